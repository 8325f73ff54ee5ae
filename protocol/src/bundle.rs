//! A worker version as the control plane stores it and edge nodes run it.
//!
//! A bundle is plain data: module sources keyed by their path relative to
//! the worker's root, the main module's path, vars, limits and bindings. Its identity
//! is the sha256 of its canonical JSON encoding ([`Bundle::canonical_bytes`]):
//! field order is fixed and every map is sorted, so the same content always
//! hashes the same, whoever encoded it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The most bytes one bundle's canonical encoding may take.
pub const MAX_BUNDLE_BYTES: usize = 25 * 1024 * 1024;
/// The most modules one bundle may hold.
pub const MAX_MODULES: usize = 1000;
/// The most vars one bundle may hold.
pub const MAX_VARS: usize = 256;
/// Module file extensions an edge node can load.
/// (`.map`: a source map a bundled module names, for stack traces.)
const MODULE_EXTENSIONS: [&str; 10] = [
  ".js", ".mjs", ".cjs", ".ts", ".mts", ".cts", ".jsx", ".tsx", ".json", ".map",
];

/// Why a bundle was refused. Nothing of a refused bundle is stored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
  /// Not the JSON shape of a bundle.
  #[error("malformed bundle: {0}")]
  Malformed(String),
  /// Larger than [`MAX_BUNDLE_BYTES`], or too many modules or vars.
  #[error("bundle too large: {0}")]
  TooLarge(String),
  /// A module path that could escape the worker's root or is not a module.
  #[error("bad module path {path:?}: {why}")]
  BadPath {
    /// The path as given.
    path: String,
    /// What is wrong with it.
    why: &'static str,
  },
  /// The main module is not among the modules.
  #[error("main module {0:?} is not in the bundle")]
  MissingMain(String),
  /// A var name that is not a JS identifier-like name.
  #[error("bad var name {0:?}: use letters, digits and _ only, not starting with a digit")]
  BadVar(String),
  /// A binding whose name is not a JS identifier-like name, is taken
  /// twice (by a var or another binding), or names a malformed namespace.
  #[error("bad binding {name:?}: {why}")]
  BadBinding {
    /// The binding's name.
    name: String,
    /// What is wrong with it.
    why: String,
  },
  /// A cron trigger that is not a Workers cron pattern, or too many.
  #[error("bad cron trigger: {0}")]
  BadCron(String),
  /// An assets manifest over the limits or malformed.
  #[error("bad assets: {0}")]
  BadAssets(String),
  /// The content does not hash to the hash it was asked for under.
  #[error("bundle hash mismatch: expected {expected}, got {actual}")]
  HashMismatch {
    /// The hash asked for.
    expected: String,
    /// The hash of what arrived.
    actual: String,
  },
}

/// The most cron triggers one worker may have.
pub const MAX_CRONS: usize = 32;

/// The `[limits]` of a worker, as in `outpost.toml`: each unset field takes
/// the node's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
  /// CPU time per request, in milliseconds.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub cpu_ms: Option<u64>,
  /// Heap limit, in MiB.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub memory_mb: Option<usize>,
  /// Wall-clock time per request, in milliseconds.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub wall_ms: Option<u64>,
  /// Requests in flight at once in the isolate.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub max_inflight: Option<usize>,
  /// Requests that may wait for a slot before the rest get 503.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub max_queued: Option<usize>,
  /// `fetch()` calls per request.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub subrequests: Option<u32>,
  /// How long one `fetch()` may wait for its response head, in milliseconds.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub subrequest_timeout_ms: Option<u64>,
}

/// One worker version: everything an edge node needs to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
  /// The main module's path, one of `modules`' keys.
  pub main: String,
  /// Module sources by path relative to the worker's root (`src/index.ts`).
  pub modules: BTreeMap<String, String>,
  /// Plain vars for `env`.
  #[serde(default)]
  pub vars: BTreeMap<String, String>,
  /// Overrides of the default limits.
  #[serde(default)]
  pub limits: Limits,
  /// Allows `eval` and `new Function` (off by default).
  #[serde(default)]
  pub allow_eval: bool,
  /// What outbound `fetch()` may reach besides public addresses.
  #[serde(default)]
  pub outbound_allow: Vec<String>,
  /// KV namespaces bound into `env`.
  #[serde(default, skip_serializing_if = "Vec::is_empty")]
  pub kv_namespaces: Vec<KvBinding>,
  /// Service bindings (`[[services]]`): other workers reached through
  /// `env`.
  #[serde(default, skip_serializing_if = "Vec::is_empty")]
  pub services: Vec<ServiceBinding>,
  /// Dispatch namespace bindings (`[[dispatch_namespaces]]`): the user
  /// workers of a namespace, reached through `env.<binding>.get(name)`.
  #[serde(default, skip_serializing_if = "Vec::is_empty")]
  pub dispatch_namespaces: Vec<DispatchNamespaceBinding>,
  /// `compatibility_date` from the project's config, if any.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub compatibility_date: Option<String>,
  /// `compatibility_flags` (`nodejs_compat` makes `Buffer` and `process`
  /// globals).
  #[serde(default, skip_serializing_if = "Vec::is_empty")]
  pub compatibility_flags: Vec<String>,
  /// How imports resolved when the bundle was built, for those a plain
  /// relative URL does not give (packages, extensionless paths, built-in
  /// modules): module path, then the specifier as written, then a module
  /// path of the bundle or a built-in module (`node:events`).
  #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
  pub imports: BTreeMap<String, BTreeMap<String, String>>,
  /// Cron triggers (`triggers.crons`), Workers' patterns.
  #[serde(default, skip_serializing_if = "Vec::is_empty")]
  pub crons: Vec<String>,
  /// Static assets (`[assets]`): which files, by content hash, and how
  /// they are served. The bytes are uploaded apart, once per hash.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub assets: Option<crate::assets::AssetManifest>,
}

/// A service binding (`[[services]]`): `env.<binding>` reaches worker
/// `service` on the same node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceBinding {
  /// The name in `env`.
  pub binding: String,
  /// The bound worker's name.
  pub service: String,
  /// The named export (a `WorkerEntrypoint` class) of the bound worker to
  /// call, in place of its default export.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub entrypoint: Option<String>,
}

/// A dispatch namespace binding (`[[dispatch_namespaces]]`): `env.<binding>`
/// reaches the user workers of `namespace` on the same node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchNamespaceBinding {
  /// The name in `env`.
  pub binding: String,
  /// The namespace.
  pub namespace: String,
}

/// A KV namespace bound into a worker's `env` (`[[kv_namespaces]]` in
/// `outpost.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvBinding {
  /// The name in `env`.
  pub binding: String,
  /// The namespace's id.
  pub id: String,
}

impl Bundle {
  /// Whether `nodejs_compat` (or `nodejs_compat_v2`) is among the flags.
  pub fn nodejs_compat(&self) -> bool {
    self
      .compatibility_flags
      .iter()
      .any(|f| f == "nodejs_compat" || f == "nodejs_compat_v2")
  }

  /// Parses and validates an uploaded bundle.
  pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
    if bytes.len() > MAX_BUNDLE_BYTES {
      return Err(BundleError::TooLarge(format!(
        "{} bytes, the limit is {MAX_BUNDLE_BYTES}",
        bytes.len()
      )));
    }
    let bundle: Bundle =
      serde_json::from_slice(bytes).map_err(|e| BundleError::Malformed(e.to_string()))?;
    bundle.validate()?;
    Ok(bundle)
  }

  /// Checks the module paths, the main module, the vars and the size.
  pub fn validate(&self) -> Result<(), BundleError> {
    if self.modules.is_empty() {
      return Err(BundleError::Malformed(
        "a bundle needs at least one module".into(),
      ));
    }
    if self.modules.len() > MAX_MODULES {
      return Err(BundleError::TooLarge(format!(
        "{} modules, the limit is {MAX_MODULES}",
        self.modules.len()
      )));
    }
    if self.vars.len() > MAX_VARS {
      return Err(BundleError::TooLarge(format!(
        "{} vars, the limit is {MAX_VARS}",
        self.vars.len()
      )));
    }
    for path in self.modules.keys() {
      check_module_path(path)?;
    }
    if !self.modules.contains_key(&self.main) {
      return Err(BundleError::MissingMain(self.main.clone()));
    }
    if let Some(name) = self.vars.keys().find(|name| !is_var_name(name)) {
      return Err(BundleError::BadVar(name.clone()));
    }
    self.check_bindings()?;
    self.check_imports()?;
    if self.crons.len() > MAX_CRONS {
      return Err(BundleError::BadCron(format!(
        "{} triggers, the limit is {MAX_CRONS}",
        self.crons.len()
      )));
    }
    for cron in &self.crons {
      crate::cron::CronTrigger::parse(cron).map_err(BundleError::BadCron)?;
    }
    if let Some(assets) = &self.assets {
      assets.check().map_err(BundleError::BadAssets)?;
    }
    let size = self.canonical_bytes().len();
    if size > MAX_BUNDLE_BYTES {
      return Err(BundleError::TooLarge(format!(
        "{size} bytes, the limit is {MAX_BUNDLE_BYTES}"
      )));
    }
    Ok(())
  }

  fn check_imports(&self) -> Result<(), BundleError> {
    for (module, imports) in &self.imports {
      if !self.modules.contains_key(module) {
        return Err(BundleError::Malformed(format!(
          "imports of {module:?}, which is not in the bundle"
        )));
      }
      for (written, target) in imports {
        let builtin = target.starts_with("node:") || target.starts_with("cloudflare:");
        if !builtin && !self.modules.contains_key(target) {
          return Err(BundleError::Malformed(format!(
            "{module:?} imports {written:?} as {target:?}, which is not in the bundle"
          )));
        }
      }
    }
    Ok(())
  }

  fn check_bindings(&self) -> Result<(), BundleError> {
    let mut names = std::collections::BTreeSet::new();
    for kv in &self.kv_namespaces {
      let bad = |why: String| BundleError::BadBinding {
        name: kv.binding.clone(),
        why,
      };
      if !is_var_name(&kv.binding) {
        return Err(bad(
          "use letters, digits and _ only, not starting with a digit".into(),
        ));
      }
      if self.vars.contains_key(&kv.binding) || !names.insert(kv.binding.as_str()) {
        return Err(bad("the name is bound twice".into()));
      }
      crate::kv::check_namespace_id(&kv.id)
        .map_err(|_| bad(format!("{:?} is not a namespace id", kv.id)))?;
    }
    for service in &self.services {
      let bad = |why: &str| BundleError::BadBinding {
        name: service.binding.clone(),
        why: why.to_owned(),
      };
      if !is_var_name(&service.binding) {
        return Err(bad(
          "use letters, digits and _ only, not starting with a digit",
        ));
      }
      if self.vars.contains_key(&service.binding) || !names.insert(service.binding.as_str()) {
        return Err(bad("the name is bound twice"));
      }
      if service.service.is_empty() || service.service.len() > 63 {
        return Err(bad("the service must name a worker"));
      }
      if let Some(entrypoint) = &service.entrypoint
        && !is_var_name(entrypoint)
      {
        return Err(bad("the entrypoint must name an export of the worker"));
      }
    }
    for dispatch in &self.dispatch_namespaces {
      let bad = |why: &str| BundleError::BadBinding {
        name: dispatch.binding.clone(),
        why: why.to_owned(),
      };
      if !is_var_name(&dispatch.binding) {
        return Err(bad(
          "use letters, digits and _ only, not starting with a digit",
        ));
      }
      if self.vars.contains_key(&dispatch.binding) || !names.insert(dispatch.binding.as_str()) {
        return Err(bad("the name is bound twice"));
      }
      if !is_worker_name(&dispatch.namespace) {
        return Err(bad(
          "the namespace must be 1 to 63 lowercase letters, digits and -",
        ));
      }
    }
    if let Some(binding) = self.assets.as_ref().and_then(|a| a.binding.as_ref()) {
      let bad = |why: &str| BundleError::BadBinding {
        name: binding.clone(),
        why: why.to_owned(),
      };
      if !is_var_name(binding) {
        return Err(bad(
          "use letters, digits and _ only, not starting with a digit",
        ));
      }
      if self.vars.contains_key(binding) || names.contains(binding.as_str()) {
        return Err(bad("the name is bound twice"));
      }
    }
    Ok(())
  }

  /// The canonical encoding, the one that is hashed and stored.
  pub fn canonical_bytes(&self) -> Vec<u8> {
    // Struct fields serialize in declaration order and BTreeMaps sorted, so
    // this is deterministic. Serializing plain data cannot fail.
    serde_json::to_vec(self).unwrap_or_default()
  }

  /// The bundle's identity: the lowercase hex sha256 of its canonical
  /// encoding.
  pub fn hash(&self) -> String {
    sha256_hex(&self.canonical_bytes())
  }

  /// Parses a bundle fetched by `expected` hash, refusing it unless its
  /// bytes hash to exactly that.
  pub fn from_stored(bytes: &[u8], expected: &str) -> Result<Self, BundleError> {
    let actual = sha256_hex(bytes);
    if actual != expected {
      return Err(BundleError::HashMismatch {
        expected: expected.to_owned(),
        actual,
      });
    }
    Self::from_json(bytes)
  }
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
  hex(&Sha256::digest(bytes))
}

/// `bytes` in lowercase hex: the one hex encoder of the workspace.
pub fn hex(bytes: &[u8]) -> String {
  const DIGITS: &[u8; 16] = b"0123456789abcdef";
  let mut text = String::with_capacity(bytes.len() * 2);
  for byte in bytes {
    text.push(char::from(DIGITS[usize::from(byte >> 4)]));
    text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
  }
  text
}

/// Whether `hash` looks like a [`sha256_hex`] output, so it is safe as a
/// file name.
pub fn is_sha256_hex(hash: &str) -> bool {
  hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A relative path of plain segments with a module extension: nothing that
/// could name a file outside the worker's root once joined to it.
fn check_module_path(path: &str) -> Result<(), BundleError> {
  let bad = |why| {
    Err(BundleError::BadPath {
      path: path.to_owned(),
      why,
    })
  };
  if path.is_empty() || path.len() > 512 {
    return bad("must be 1 to 512 bytes");
  }
  if path.starts_with('/') || path.contains('\\') || path.contains(':') {
    return bad("must be relative, with / separators");
  }
  for segment in path.split('/') {
    if segment.is_empty() || segment == "." || segment == ".." {
      return bad("must not have empty, . or .. segments");
    }
    if segment.chars().any(char::is_control) {
      return bad("must not hold control characters");
    }
  }
  if !MODULE_EXTENSIONS.iter().any(|ext| path.ends_with(ext)) {
    return bad("must end in .js, .mjs, .cjs, .ts, .mts, .cts, .jsx, .tsx, .json or .map");
  }
  Ok(())
}

/// Whether `name` may name a worker or a dispatch namespace: 1 to 63
/// lowercase letters, digits and `-`, not starting with `-` (it becomes
/// part of host names).
pub fn is_worker_name(name: &str) -> bool {
  !name.is_empty()
    && name.len() <= 63
    && name
      .bytes()
      .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    && !name.starts_with('-')
}

/// The name user worker `worker` of dispatch namespace `namespace` is
/// stored and deployed under: `<namespace>/<worker>`. No worker name holds
/// a `/`, so it never clashes with a public worker's, and no route, Host
/// or service binding reaches it.
pub fn namespaced_worker(namespace: &str, worker: &str) -> String {
  format!("{namespace}/{worker}")
}

fn is_var_name(name: &str) -> bool {
  let mut chars = name.chars();
  matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    && name.len() <= 128
}
