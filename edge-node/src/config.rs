//! A worker's `outpost.toml`: its entry, plain vars, KV bindings, limits,
//! and what its `fetch()` may reach. Read by `outpost edge --local` for each folder and by
//! `outpost dev` beside the entry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use outpost_protocol::{KvBackend, KvBinding, Limits};
use outpost_runtime::{KvNamespace, OutboundPolicy, PolicyError, WorkerLimits};
use serde::Deserialize;

/// The optional per-worker config file.
pub const CONFIG_FILE: &str = "outpost.toml";

/// `outpost.toml` could not be read or understood.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
  /// The config file.
  pub path: PathBuf,
  /// What is wrong with it.
  pub message: String,
}

/// What a worker's `outpost.toml` says, with defaults for what it leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
  /// The entry module it names, relative to its folder.
  pub main: Option<PathBuf>,
  /// Plain vars for `env`.
  pub vars: BTreeMap<String, String>,
  /// The limits it runs under, its outbound allow-list included.
  pub limits: WorkerLimits,
  /// `[[kv_namespaces]]`.
  pub kv_namespaces: Vec<KvBinding>,
}

/// What `outpost deploy` takes from a project's `outpost.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectConfig {
  /// `name`.
  pub name: Option<String>,
  /// `routes`.
  pub routes: Vec<String>,
  /// `main`, relative to the file's folder.
  pub main: Option<PathBuf>,
  /// `[vars]`.
  pub vars: BTreeMap<String, String>,
  /// `[limits]`.
  pub limits: Limits,
  /// `allow_eval`.
  pub allow_eval: bool,
  /// `[outbound] allow`.
  pub outbound_allow: Vec<String>,
  /// `[[kv_namespaces]]`.
  pub kv_namespaces: Vec<KvBinding>,
}

/// Reads `dir/outpost.toml` for `outpost deploy`; `None` if there is none.
pub fn read_project_config(dir: &Path) -> Result<Option<ProjectConfig>, ConfigError> {
  let path = dir.join(CONFIG_FILE);
  let text = match std::fs::read_to_string(&path) {
    Ok(text) => text,
    Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
    Err(err) => {
      return Err(ConfigError {
        path,
        message: err.to_string(),
      });
    }
  };
  let config: WorkerConfig = toml::from_str(&text).map_err(|e| ConfigError {
    path: path.clone(),
    message: e.to_string(),
  })?;
  Ok(Some(ProjectConfig {
    name: config.name,
    routes: config.routes,
    main: config.main,
    vars: config.vars,
    limits: config.limits,
    allow_eval: config.allow_eval,
    outbound_allow: config.outbound.allow,
    kv_namespaces: config.kv_namespaces,
  }))
}

/// Reads `dir/outpost.toml` (none at all means every default); `node` is
/// what the node opens to every worker's `fetch()`.
pub fn read_worker_settings(
  dir: &Path,
  node: &OutboundPolicy,
) -> Result<WorkerSettings, ConfigError> {
  let path = dir.join(CONFIG_FILE);
  let fail = |message: String| ConfigError {
    path: path.clone(),
    message,
  };
  let config = match std::fs::read_to_string(&path) {
    Ok(text) => toml::from_str::<WorkerConfig>(&text).map_err(|e| fail(e.to_string()))?,
    Err(err) if err.kind() == std::io::ErrorKind::NotFound => WorkerConfig::default(),
    Err(err) => return Err(fail(err.to_string())),
  };
  let limits = config.limits(node).map_err(|e| fail(e.to_string()))?;
  Ok(WorkerSettings {
    main: config.main,
    vars: config.vars,
    limits,
    kv_namespaces: config.kv_namespaces,
  })
}

/// `outpost.toml`: everything optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkerConfig {
  /// The worker's name on the control plane (`outpost deploy`).
  name: Option<String>,
  /// Route patterns `outpost deploy` sets for the worker.
  #[serde(default)]
  routes: Vec<String>,
  /// The entry module, relative to the worker's folder.
  main: Option<PathBuf>,
  /// Plain vars for `env`.
  #[serde(default)]
  vars: BTreeMap<String, String>,
  /// Overrides of the default limits.
  #[serde(default)]
  limits: Limits,
  /// Allows `eval` and `new Function` (off by default).
  #[serde(default)]
  allow_eval: bool,
  /// What outbound `fetch()` may reach besides public addresses.
  #[serde(default)]
  outbound: OutboundConfig,
  /// KV namespaces bound into `env`.
  #[serde(default)]
  kv_namespaces: Vec<KvBinding>,
}

/// `[outbound]` in `outpost.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboundConfig {
  /// Host names (`api.internal`, `*.corp.example`), addresses and ranges
  /// (`10.0.0.0/8`) opened to `fetch()`.
  #[serde(default)]
  allow: Vec<String>,
}

impl WorkerConfig {
  /// The worker's limits; `node` is what the node's own allow-list opens
  /// to every worker.
  fn limits(&self, node: &OutboundPolicy) -> Result<WorkerLimits, PolicyError> {
    worker_limits(&self.limits, self.allow_eval, &self.outbound.allow, node)
  }
}

/// A worker's KV bindings, each namespace served by `backend`.
pub fn kv_env(
  bindings: &[KvBinding],
  backend: &Arc<dyn KvBackend>,
) -> BTreeMap<String, KvNamespace> {
  bindings
    .iter()
    .map(|kv| {
      let namespace = KvNamespace {
        id: kv.id.clone(),
        backend: backend.clone(),
      };
      (kv.binding.clone(), namespace)
    })
    .collect()
}

/// A worker's limits from its `[limits]`, `allow_eval` and `[outbound]
/// allow` (in `outpost.toml` or a deployed bundle), defaults filling what
/// they leave out; `node` is what the node opens to every worker.
pub fn worker_limits(
  limits: &Limits,
  allow_eval: bool,
  allow: &[String],
  node: &OutboundPolicy,
) -> Result<WorkerLimits, PolicyError> {
  let defaults = WorkerLimits::default();
  let outbound = OutboundPolicy::parse(allow)?.merged(node);
  Ok(WorkerLimits {
    cpu_per_request: limits
      .cpu_ms
      .map_or(defaults.cpu_per_request, Duration::from_millis),
    heap_bytes: limits
      .memory_mb
      .map_or(defaults.heap_bytes, |mb| mb.saturating_mul(1 << 20)),
    wall_per_request: limits
      .wall_ms
      .map_or(defaults.wall_per_request, Duration::from_millis),
    allow_code_generation: allow_eval,
    max_inflight: limits.max_inflight.unwrap_or(defaults.max_inflight).max(1),
    max_queued: limits.max_queued.unwrap_or(defaults.max_queued),
    max_subrequests: limits.subrequests.unwrap_or(defaults.max_subrequests),
    subrequest_timeout: limits
      .subrequest_timeout_ms
      .map_or(defaults.subrequest_timeout, Duration::from_millis),
    outbound: Arc::new(outbound),
  })
}
