//! Static assets (`[assets]`): the manifest a version carries (each file's
//! path, content hash and size, and how requests find them), its limits,
//! and which answer a request gets: a file, a redirect, the worker, or the
//! not-found handling. Shared by the CLI (which builds manifests), the
//! control plane (which checks them) and the nodes (which serve them).
//! The bytes travel apart from the bundle, stored once per hash.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bundle::is_sha256_hex;

/// Most files one version may have.
pub const MAX_ASSET_FILES: usize = 20_000;
/// Largest file, in bytes (as on Workers).
pub const MAX_ASSET_BYTES: u64 = 25 * 1024 * 1024;

/// One file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetFile {
  /// The sha256 of its bytes, lowercase hex.
  pub hash: String,
  /// Its size in bytes.
  pub size: u64,
}

/// What a request that matches no file gets (`not_found_handling`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotFoundHandling {
  /// An empty 404.
  #[default]
  None,
  /// `/index.html` with 200: the client-side router takes it from there.
  SinglePageApplication,
  /// The nearest `404.html` up the path, with 404.
  #[serde(rename = "404-page")]
  Page404,
}

/// How `.html` files and folders' `index.html` answer (`html_handling`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HtmlHandling {
  /// `/page` serves `page.html`, `/dir/` serves `dir/index.html`, and the
  /// other spellings redirect to those.
  #[default]
  AutoTrailingSlash,
  /// Every HTML page ends in `/`.
  ForceTrailingSlash,
  /// No HTML page ends in `/`.
  DropTrailingSlash,
  /// Paths are files, exactly.
  None,
}

/// How a version's assets are found and bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetManifest {
  /// Files by path: `/` then the path under the assets folder, `/`
  /// separated.
  pub files: BTreeMap<String, AssetFile>,
  /// The name of the `env` binding whose `fetch()` serves them.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub binding: Option<String>,
  /// `not_found_handling`.
  #[serde(default)]
  pub not_found_handling: NotFoundHandling,
  /// `html_handling`.
  #[serde(default)]
  pub html_handling: HtmlHandling,
  /// Paths that reach the worker before any file (`run_worker_first`;
  /// `true` is `["/*"]`). A pattern ends in `*` to match a prefix, or
  /// starts with `!` to exclude.
  #[serde(default, skip_serializing_if = "Vec::is_empty")]
  pub run_worker_first: Vec<String>,
  /// Whether the version has a worker behind its assets (false for an
  /// assets-only project).
  #[serde(default = "yes")]
  pub has_worker: bool,
}

fn yes() -> bool {
  true
}

/// No files, served the Workers way, in front of a worker.
impl Default for AssetManifest {
  fn default() -> Self {
    Self {
      files: BTreeMap::new(),
      binding: None,
      not_found_handling: NotFoundHandling::default(),
      html_handling: HtmlHandling::default(),
      run_worker_first: Vec::new(),
      has_worker: true,
    }
  }
}

/// What a request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetAnswer {
  /// The file at this manifest path, with this status (200, or 404 for a
  /// 404 page).
  File {
    /// Its manifest path.
    path: String,
    /// The status to answer with.
    status: u16,
  },
  /// A redirect (307) to this path, the query kept.
  Redirect(String),
  /// The worker.
  Worker,
  /// An empty 404.
  NotFound,
}

impl AssetManifest {
  /// Checks the manifest's limits and spelling.
  pub fn check(&self) -> Result<(), String> {
    if self.files.len() > MAX_ASSET_FILES {
      return Err(format!(
        "{} asset files, the limit is {MAX_ASSET_FILES}",
        self.files.len()
      ));
    }
    for (path, file) in &self.files {
      if !path.starts_with('/') || path.contains("//") || path.split('/').any(|p| p == "..") {
        return Err(format!("asset path {path:?} is not a clean absolute path"));
      }
      if file.size > MAX_ASSET_BYTES {
        return Err(format!(
          "asset {path} is {} bytes, the limit is {MAX_ASSET_BYTES}",
          file.size
        ));
      }
      if !is_sha256_hex(&file.hash) {
        return Err(format!("asset {path} has no sha256 hash"));
      }
    }
    if self.binding.as_ref().is_some_and(String::is_empty) {
      return Err("the assets binding name is empty".into());
    }
    Ok(())
  }

  /// What a request for `path` (percent-decoded) gets. `navigation` is a
  /// browser's page load (`Sec-Fetch-Mode: navigate`), which a
  /// single-page app answers with its index rather than the worker.
  pub fn answer(&self, path: &str, navigation: bool) -> AssetAnswer {
    if self.has_worker && self.worker_first(path) {
      return AssetAnswer::Worker;
    }
    if let Some(answer) = self.lookup(path) {
      return answer;
    }
    let spa = self.not_found_handling == NotFoundHandling::SinglePageApplication;
    if self.has_worker && !(spa && navigation) {
      return AssetAnswer::Worker;
    }
    self.not_found(path)
  }

  /// What `env.ASSETS.fetch()` gets for `path`: files and the not-found
  /// handling, never the worker.
  pub fn answer_for_binding(&self, path: &str) -> AssetAnswer {
    self.lookup(path).unwrap_or_else(|| self.not_found(path))
  }

  fn not_found(&self, path: &str) -> AssetAnswer {
    match self.not_found_handling {
      NotFoundHandling::SinglePageApplication if self.files.contains_key("/index.html") => {
        AssetAnswer::File {
          path: "/index.html".into(),
          status: 200,
        }
      }
      NotFoundHandling::Page404 => {
        // The nearest 404.html, from the request's folder up to the root.
        let mut dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
        loop {
          let page = format!("{dir}/404.html");
          if self.files.contains_key(&page) {
            return AssetAnswer::File {
              path: page,
              status: 404,
            };
          }
          match dir.rsplit_once('/') {
            Some((up, _)) => dir = up,
            None => return AssetAnswer::NotFound,
          }
        }
      }
      _ => AssetAnswer::NotFound,
    }
  }

  fn worker_first(&self, path: &str) -> bool {
    let matches = |pattern: &str| match pattern.strip_suffix('*') {
      Some(prefix) => path.starts_with(prefix),
      None => path == pattern,
    };
    let included = self
      .run_worker_first
      .iter()
      .filter(|p| !p.starts_with('!'))
      .any(|p| matches(p));
    let excluded = self
      .run_worker_first
      .iter()
      .filter_map(|p| p.strip_prefix('!'))
      .any(matches);
    included && !excluded
  }

  /// The file or redirect `path` names under the HTML handling, if any.
  fn lookup(&self, path: &str) -> Option<AssetAnswer> {
    let file = |p: String| AssetAnswer::File {
      path: p,
      status: 200,
    };
    let has = |p: &str| self.files.contains_key(p);
    if self.html_handling == HtmlHandling::None {
      return has(path).then(|| file(path.to_owned()));
    }
    let force = self.html_handling == HtmlHandling::ForceTrailingSlash;
    let drop = self.html_handling == HtmlHandling::DropTrailingSlash;
    // The file's own name redirects to its pretty URL.
    if has(path) {
      if let Some(stem) = path.strip_suffix("/index.html") {
        let pretty = if drop && !stem.is_empty() {
          stem.to_owned()
        } else {
          format!("{stem}/")
        };
        return Some(AssetAnswer::Redirect(pretty));
      }
      if let Some(stem) = path.strip_suffix(".html") {
        let pretty = if force {
          format!("{stem}/")
        } else {
          stem.to_owned()
        };
        return Some(AssetAnswer::Redirect(pretty));
      }
    }
    if has(path) && !path.ends_with('/') {
      return Some(file(path.to_owned()));
    }
    if let Some(stem) = path.strip_suffix('/') {
      let index = format!("{stem}/index.html");
      let page = format!("{stem}.html");
      if has(&index) {
        return Some(if drop && !stem.is_empty() {
          AssetAnswer::Redirect(stem.to_owned())
        } else {
          file(index)
        });
      }
      if !stem.is_empty() && has(&page) {
        return Some(if force {
          file(page)
        } else {
          AssetAnswer::Redirect(stem.to_owned())
        });
      }
      return None;
    }
    let page = format!("{path}.html");
    let index = format!("{path}/index.html");
    if has(&page) {
      return Some(if force {
        AssetAnswer::Redirect(format!("{path}/"))
      } else {
        file(page)
      });
    }
    if has(&index) {
      return Some(if drop {
        file(index)
      } else {
        AssetAnswer::Redirect(format!("{path}/"))
      });
    }
    None
  }
}
