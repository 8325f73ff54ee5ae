//! Static assets served without an isolate: a version's [`AssetSite`]
//! answers the requests its manifest claims (see
//! `outpost_protocol::assets` for which), with content types, ETags and
//! 304s, single byte ranges (206), and compression: a precompressed
//! `.br`/`.gz` sibling when the client takes it, else gzip made once and
//! kept. Bytes come from the project folder (`outpost dev`) or the node's
//! disk cache of uploaded assets, through a shared in-memory cache.

mod scan;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use outpost_protocol::assets::{AssetAnswer, AssetFile, AssetManifest};

pub use scan::{ScannedAssets, scan};

/// Why assets could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AssetsError {
  /// The `[assets] directory` is not a folder.
  #[error("the assets directory {0} is not a folder")]
  NoFolder(PathBuf),
  /// A file could not be read.
  #[error("{0}: {1}")]
  Io(PathBuf, std::io::Error),
  /// Over a limit, or unusable.
  #[error("{0}")]
  Invalid(String),
}

/// Bytes kept in memory, by content hash and encoding, weighed by size.
#[derive(Clone)]
pub struct AssetCache(moka::sync::Cache<(String, &'static str), Bytes>);

impl AssetCache {
  /// A cache of at most `bytes` bytes.
  pub fn new(bytes: u64) -> Self {
    Self(
      moka::sync::Cache::builder()
        .weigher(|_, value: &Bytes| u32::try_from(value.len()).unwrap_or(u32::MAX))
        .max_capacity(bytes)
        .build(),
    )
  }
}

impl Default for AssetCache {
  fn default() -> Self {
    Self::new(128 * 1024 * 1024)
  }
}

/// Where a site's bytes are on disk.
#[derive(Debug, Clone)]
enum Source {
  /// Each manifest path's own file (a project folder).
  Files(BTreeMap<String, PathBuf>),
  /// Files named by their hash (the node's cache of uploads).
  ByHash(PathBuf),
}

/// A file's response headers, made once.
struct FileHead {
  content_type: HeaderValue,
  etag: HeaderValue,
  compressible: bool,
  /// Precompressed siblings' manifest paths.
  br: Option<String>,
  gz: Option<String>,
}

fn heads(manifest: &AssetManifest) -> HashMap<String, FileHead> {
  let sibling = |path: &str, suffix: &str| {
    let name = format!("{path}{suffix}");
    manifest.files.contains_key(&name).then_some(name)
  };
  manifest
    .files
    .iter()
    .map(|(path, file)| {
      let kind = content_type(path);
      let head = FileHead {
        content_type: HeaderValue::from_str(&kind)
          .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
        etag: HeaderValue::from_str(&format!("\"{}\"", file.hash))
          .unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
        compressible: compressible(&kind),
        br: sibling(path, ".br"),
        gz: sibling(path, ".gz"),
      };
      (path.clone(), head)
    })
    .collect()
}

/// One version's assets.
pub struct AssetSite {
  manifest: AssetManifest,
  heads: HashMap<String, FileHead>,
  source: Source,
  cache: AssetCache,
}

impl std::fmt::Debug for AssetSite {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("AssetSite")
      .field("files", &self.manifest.files.len())
      .finish()
  }
}

/// Sites are the same when their manifests are.
impl PartialEq for AssetSite {
  fn eq(&self, other: &Self) -> bool {
    self.manifest == other.manifest
  }
}

impl Eq for AssetSite {}

/// A response from the assets, before it meets a transport.
#[derive(Debug, Clone)]
pub struct AssetResponse {
  /// The status.
  pub status: StatusCode,
  /// The headers.
  pub headers: HeaderMap,
  /// The body (empty for HEAD and 304).
  pub body: Bytes,
}

impl From<AssetResponse> for outpost_runtime::WorkerResponse {
  fn from(response: AssetResponse) -> Self {
    Self {
      status: response.status,
      headers: response.headers,
      body: outpost_runtime::ResponseBody::Full(response.body),
    }
  }
}

/// `env`'s binding to `site`, if its manifest names one.
pub fn env_binding(
  site: &std::sync::Arc<AssetSite>,
) -> Option<(String, std::sync::Arc<dyn outpost_runtime::AssetFetcher>)> {
  let fetcher: std::sync::Arc<dyn outpost_runtime::AssetFetcher> = site.clone();
  Some((site.binding()?.to_owned(), fetcher))
}

/// `env.ASSETS.fetch()` on a site.
impl outpost_runtime::AssetFetcher for AssetSite {
  fn fetch(
    &self,
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(String, String)],
  ) -> outpost_runtime::AssetReply {
    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
    let mut request = HeaderMap::new();
    for (name, value) in headers {
      if let (Ok(name), Ok(value)) = (
        header::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
      ) {
        request.append(name, value);
      }
    }
    let response = AssetSite::fetch(self, &method, path, query, &request);
    outpost_runtime::AssetReply {
      status: response.status.as_u16(),
      headers: response
        .headers
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
        .collect(),
      body: response.body,
    }
  }
}

/// Types compressed on the fly when the client takes gzip.
fn compressible(content_type: &str) -> bool {
  content_type.starts_with("text/")
    || [
      "application/javascript",
      "application/json",
      "application/xml",
      "application/wasm",
      "image/svg+xml",
      "application/manifest+json",
    ]
    .iter()
    .any(|t| content_type.starts_with(t))
}

fn content_type(path: &str) -> String {
  let guess = mime_guess::from_path(path).first_or_octet_stream();
  let essence = guess.essence_str();
  if essence.starts_with("text/") || essence == "application/javascript" {
    format!("{essence}; charset=utf-8")
  } else {
    essence.to_owned()
  }
}

/// Whether `accept_encoding` takes `coding` (a `q=0` refuses it).
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
  let Some(value) = headers
    .get(header::ACCEPT_ENCODING)
    .and_then(|v| v.to_str().ok())
  else {
    return false;
  };
  value.split(',').any(|item| {
    let mut parts = item.split(';');
    let name = parts.next().unwrap_or("").trim();
    let refused = parts.any(|p| {
      p.trim()
        .strip_prefix("q=")
        .and_then(|q| q.trim().parse::<f32>().ok())
        .is_some_and(|q| q <= 0.0)
    });
    (name.eq_ignore_ascii_case(coding) || name == "*") && !refused
  })
}

/// A single `bytes=` range of a `size`-byte body: `Some(Ok(start..end))`,
/// `Some(Err(()))` when unsatisfiable, `None` to send it whole.
fn byte_range(headers: &HeaderMap, size: u64) -> Option<Result<(u64, u64), ()>> {
  let value = headers.get(header::RANGE)?.to_str().ok()?;
  let spec = value.trim().strip_prefix("bytes=")?;
  if spec.contains(',') {
    return None;
  }
  let (first, last) = spec.split_once('-')?;
  let (first, last) = (first.trim(), last.trim());
  let range = if first.is_empty() {
    let suffix: u64 = last.parse().ok()?;
    if suffix == 0 {
      return Some(Err(()));
    }
    (size.saturating_sub(suffix), size)
  } else {
    let start: u64 = first.parse().ok()?;
    let end = if last.is_empty() {
      size
    } else {
      last.parse::<u64>().ok()?.saturating_add(1).min(size)
    };
    if start >= size || start >= end {
      return Some(Err(()));
    }
    (start, end)
  };
  Some(Ok(range))
}

impl AssetSite {
  /// The assets of a project folder, read as `scanned` found them, with
  /// `options` (a manifest whose files are ignored) saying how they are
  /// served.
  pub fn from_folder(scanned: ScannedAssets, options: &AssetManifest, cache: AssetCache) -> Self {
    let manifest = AssetManifest {
      files: scanned.manifest.files,
      ..options.clone()
    };
    Self {
      heads: heads(&manifest),
      manifest,
      source: Source::Files(scanned.paths),
      cache,
    }
  }

  /// Uploaded assets, each in `dir` under its hash.
  pub fn from_cache_dir(manifest: AssetManifest, dir: PathBuf, cache: AssetCache) -> Self {
    Self {
      heads: heads(&manifest),
      manifest,
      source: Source::ByHash(dir),
      cache,
    }
  }

  /// The manifest served.
  pub fn manifest(&self) -> &AssetManifest {
    &self.manifest
  }

  /// The name of the `env` binding that fetches from these assets.
  pub fn binding(&self) -> Option<&str> {
    self.manifest.binding.as_deref()
  }

  fn bytes(&self, path: &str, file: &AssetFile) -> Result<Bytes, AssetsError> {
    let key = (file.hash.clone(), "identity");
    if let Some(bytes) = self.cache.0.get(&key) {
      return Ok(bytes);
    }
    let on_disk: PathBuf = match &self.source {
      Source::Files(paths) => paths
        .get(path)
        .cloned()
        .ok_or_else(|| AssetsError::Invalid(format!("{path} is not in the assets folder")))?,
      Source::ByHash(dir) => dir.join(&file.hash),
    };
    let bytes =
      Bytes::from(std::fs::read(&on_disk).map_err(|e| AssetsError::Io(on_disk.clone(), e))?);
    // The node's disk cache is named by hash: a file that no longer
    // matches is damaged. It goes, so the next sync fetches it again.
    if matches!(self.source, Source::ByHash(_))
      && outpost_protocol::bundle::sha256_hex(&bytes) != file.hash
    {
      let _ = std::fs::remove_file(&on_disk);
      return Err(AssetsError::Invalid(format!(
        "asset {path} ({}) is damaged on disk; removed",
        file.hash
      )));
    }
    self.cache.0.insert(key, bytes.clone());
    Ok(bytes)
  }

  fn gzipped(&self, path: &str, file: &AssetFile) -> Result<Bytes, AssetsError> {
    let key = (file.hash.clone(), "gzip");
    if let Some(bytes) = self.cache.0.get(&key) {
      return Ok(bytes);
    }
    let plain = self.bytes(path, file)?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let written = encoder.write_all(&plain).and_then(|()| encoder.finish());
    let bytes = Bytes::from(written.map_err(|e| AssetsError::Io(PathBuf::from(path), e))?);
    self.cache.0.insert(key, bytes.clone());
    Ok(bytes)
  }

  /// What a request to the worker's URL gets from the assets: `None` when
  /// it is the worker's to answer.
  pub fn answer(
    &self,
    method: &Method,
    raw_path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
  ) -> Option<AssetResponse> {
    let Some(path) = decode(raw_path) else {
      return (!self.manifest.has_worker).then(|| empty(StatusCode::BAD_REQUEST));
    };
    let navigation = headers
      .get("sec-fetch-mode")
      .is_some_and(|mode| mode == "navigate");
    let answer = self.manifest.answer(&path, navigation);
    if answer == AssetAnswer::Worker {
      return None;
    }
    if method != Method::GET && method != Method::HEAD {
      if self.manifest.has_worker {
        return None;
      }
      let mut response = empty(StatusCode::METHOD_NOT_ALLOWED);
      response
        .headers
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
      return Some(response);
    }
    Some(self.respond(answer, method, query, headers))
  }

  /// What `env.ASSETS.fetch()` gets for `raw_path`: the assets alone,
  /// never the worker.
  pub fn fetch(
    &self,
    method: &Method,
    raw_path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
  ) -> AssetResponse {
    let Some(path) = decode(raw_path) else {
      return empty(StatusCode::BAD_REQUEST);
    };
    let answer = self.manifest.answer_for_binding(&path);
    self.respond(answer, method, query, headers)
  }

  fn respond(
    &self,
    answer: AssetAnswer,
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
  ) -> AssetResponse {
    match answer {
      AssetAnswer::File { path, status } => {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        match self.file_response(&path, status, method, headers) {
          Ok(response) => response,
          Err(err) => {
            tracing::error!("asset {path}: {err}");
            empty(StatusCode::INTERNAL_SERVER_ERROR)
          }
        }
      }
      AssetAnswer::Redirect(to) => {
        let location = match query {
          Some(query) if !query.is_empty() => format!("{to}?{query}"),
          _ => to,
        };
        let mut response = empty(StatusCode::TEMPORARY_REDIRECT);
        if let Ok(value) = HeaderValue::from_str(&encode(&location)) {
          response.headers.insert(header::LOCATION, value);
        }
        response
      }
      AssetAnswer::Worker | AssetAnswer::NotFound => empty(StatusCode::NOT_FOUND),
    }
  }

  fn file_response(
    &self,
    path: &str,
    status: StatusCode,
    method: &Method,
    request: &HeaderMap,
  ) -> Result<AssetResponse, AssetsError> {
    let Some(file) = self.manifest.files.get(path) else {
      return Ok(empty(StatusCode::NOT_FOUND));
    };
    let Some(head) = self.heads.get(path) else {
      return Ok(empty(StatusCode::NOT_FOUND));
    };
    let insert = |headers: &mut HeaderMap, name: header::HeaderName, value: &str| {
      if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
      }
    };
    let mut headers = HeaderMap::with_capacity(8);
    headers.insert(header::CONTENT_TYPE, head.content_type.clone());
    headers.insert(header::ETAG, head.etag.clone());
    headers.insert(
      header::CACHE_CONTROL,
      HeaderValue::from_static("public, max-age=0, must-revalidate"),
    );
    let sibling = |name: &Option<String>| {
      name
        .as_ref()
        .and_then(|name| Some((name.clone(), self.manifest.files.get(name)?.clone())))
    };
    if head.compressible || head.br.is_some() || head.gz.is_some() {
      headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    let etag = head.etag.to_str().unwrap_or_default();
    let matches = request
      .get(header::IF_NONE_MATCH)
      .and_then(|v| v.to_str().ok())
      .is_some_and(|tags| {
        tags
          .split(',')
          .any(|tag| tag.trim().trim_start_matches("W/") == etag || tag.trim() == "*")
      });
    if matches && status == StatusCode::OK {
      return Ok(AssetResponse {
        status: StatusCode::NOT_MODIFIED,
        headers,
        body: Bytes::new(),
      });
    }
    // A range is of the identity bytes; otherwise the best encoding taken.
    let ranged = status == StatusCode::OK && request.contains_key(header::RANGE);
    let (body, encoding) = if ranged {
      insert(&mut headers, header::ACCEPT_RANGES, "bytes");
      (self.bytes(path, file)?, None)
    } else if let Some((name, file)) = sibling(&head.br).filter(|_| accepts(request, "br")) {
      (self.bytes(&name, &file)?, Some("br"))
    } else if let Some((name, file)) = sibling(&head.gz).filter(|_| accepts(request, "gzip")) {
      (self.bytes(&name, &file)?, Some("gzip"))
    } else if head.compressible && file.size > 1024 && accepts(request, "gzip") {
      (self.gzipped(path, file)?, Some("gzip"))
    } else {
      insert(&mut headers, header::ACCEPT_RANGES, "bytes");
      (self.bytes(path, file)?, None)
    };
    if let Some(encoding) = encoding {
      insert(&mut headers, header::CONTENT_ENCODING, encoding);
    }
    let mut status = status;
    let mut body = body;
    if ranged {
      let size = body.len() as u64;
      match byte_range(request, size) {
        Some(Ok((start, end))) => {
          status = StatusCode::PARTIAL_CONTENT;
          insert(
            &mut headers,
            header::CONTENT_RANGE,
            &format!("bytes {start}-{}/{size}", end - 1),
          );
          body = body
            .slice(usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(body.len()));
        }
        Some(Err(())) => {
          let mut response = empty(StatusCode::RANGE_NOT_SATISFIABLE);
          insert(
            &mut response.headers,
            header::CONTENT_RANGE,
            &format!("bytes */{size}"),
          );
          return Ok(response);
        }
        None => {}
      }
    }
    insert(
      &mut headers,
      header::CONTENT_LENGTH,
      &body.len().to_string(),
    );
    if method == Method::HEAD {
      body = Bytes::new();
    }
    Ok(AssetResponse {
      status,
      headers,
      body,
    })
  }
}

fn empty(status: StatusCode) -> AssetResponse {
  AssetResponse {
    status,
    headers: HeaderMap::new(),
    body: Bytes::new(),
  }
}

/// The request path, percent-decoded; `None` if it is not UTF-8 or names
/// a parent folder.
fn decode(raw: &str) -> Option<String> {
  let path = percent_encoding::percent_decode_str(raw)
    .decode_utf8()
    .ok()?
    .into_owned();
  if !path.starts_with('/') || path.split('/').any(|part| part == "..") {
    return None;
  }
  Some(path)
}

/// A path as a `Location` header may carry it.
fn encode(path: &str) -> String {
  const KEEP: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');
  percent_encoding::utf8_percent_encode(path, KEEP).to_string()
}

/// Whether every asset of `manifest` is in `dir` (named by hash).
pub fn missing_from(manifest: &AssetManifest, dir: &Path) -> Vec<String> {
  let mut missing: Vec<String> = manifest
    .files
    .values()
    .filter(|file| !dir.join(&file.hash).is_file())
    .map(|file| file.hash.clone())
    .collect();
  missing.sort();
  missing.dedup();
  missing
}

/// The worker an assets-only project runs behind its assets: it never
/// sees a request the assets answer, and 404s the rest.
const ASSETS_ONLY_WORKER: &str = "// Written by Outpost for a project with [assets] and no `main`.\nexport default { fetch() { return new Response(null, { status: 404 }); } };\n";

/// The site of a project in `folder` whose `[assets]` are `config`,
/// scanned now (files added later need a reload), in front of a worker
/// unless the project is assets only; `None` when `config` names no
/// directory. Returns the site and how many files it serves.
pub fn folder_site(
  folder: &Path,
  config: &crate::config::AssetsConfig,
  assets_only: bool,
  cache: AssetCache,
) -> Result<Option<(std::sync::Arc<AssetSite>, usize)>, AssetsError> {
  let Some(directory) = &config.directory else {
    return Ok(None);
  };
  let scanned = scan(&folder.join(directory))?;
  let files = scanned.paths.len();
  let mut serving = config.serving.clone();
  serving.has_worker = !assets_only;
  let site = AssetSite::from_folder(scanned, &serving, cache);
  Ok(Some((std::sync::Arc::new(site), files)))
}

/// Writes the worker of an assets-only project into `project`'s
/// `.outpost/` folder and returns its path.
pub fn assets_only_entry(project: &Path) -> Result<PathBuf, AssetsError> {
  let dir = project.join(".outpost");
  std::fs::create_dir_all(&dir).map_err(|e| AssetsError::Io(dir.clone(), e))?;
  let entry = dir.join("assets-only-worker.js");
  std::fs::write(&entry, ASSETS_ONLY_WORKER).map_err(|e| AssetsError::Io(entry.clone(), e))?;
  Ok(entry)
}

/// Keeps `bytes` in `dir` under `hash`, after checking they hash to it;
/// written aside and renamed, so a crash leaves no torn file.
pub fn store_by_hash(dir: &Path, hash: &str, bytes: &[u8]) -> Result<(), AssetsError> {
  let actual = outpost_protocol::bundle::sha256_hex(bytes);
  if actual != hash || !outpost_protocol::bundle::is_sha256_hex(hash) {
    return Err(AssetsError::Invalid(format!(
      "asset bytes hash to {actual}, not {hash}"
    )));
  }
  std::fs::create_dir_all(dir).map_err(|e| AssetsError::Io(dir.to_owned(), e))?;
  let partial = dir.join(format!(".{hash}.partial"));
  std::fs::write(&partial, bytes).map_err(|e| AssetsError::Io(partial.clone(), e))?;
  let done = dir.join(hash);
  std::fs::rename(&partial, &done).map_err(|e| AssetsError::Io(done, e))
}
