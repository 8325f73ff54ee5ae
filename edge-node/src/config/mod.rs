//! A worker's configuration: `outpost.toml` or wrangler's files (its entry,
//! vars, KV bindings, limits, what its `fetch()` may reach), and the
//! `.dev.vars` of `outpost dev`. Read by `outpost dev`, `outpost deploy` and
//! `outpost edge --local` alike.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use outpost_protocol::{DispatchNamespaceBinding, KvBackend, KvBinding, Limits, ServiceBinding};
use outpost_runtime::{KvNamespace, OutboundPolicy, PolicyError, WorkerLimits};

mod dotenv;
mod project;

pub use dotenv::{dev_vars_file, parse_dotenv, read_dev_vars};
pub use project::{AssetsConfig, CONFIG_FILE, KvConfig, Project, WRANGLER_FILES, read_project};

/// A config file could not be read or understood.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
  /// The config file.
  pub path: PathBuf,
  /// What is wrong with it.
  pub message: String,
}

/// What a local worker's config says, with defaults for what it leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
  /// The worker's name, if the config gives one.
  pub name: Option<String>,
  /// The entry module it names, relative to its folder.
  pub main: Option<PathBuf>,
  /// Plain vars for `env`.
  pub vars: BTreeMap<String, String>,
  /// The limits it runs under, its outbound allow-list included.
  pub limits: WorkerLimits,
  /// KV bindings, with the namespaces a local node uses.
  pub kv_namespaces: Vec<KvBinding>,
  /// Whether Node's built-ins are on under their bare names.
  pub nodejs_compat: bool,
  /// Its cron triggers (`triggers.crons`).
  pub crons: Vec<crate::scheduled::CronTrigger>,
  /// Its service bindings.
  pub services: Vec<ServiceBinding>,
  /// Its dispatch namespace bindings.
  pub dispatch_namespaces: Vec<DispatchNamespaceBinding>,
  /// Its `[assets]`.
  pub assets: Option<AssetsConfig>,
}

/// Reads the project config of `dir` (outpost.toml and wrangler's files)
/// without an environment; `None` if there is none.
pub fn read_project_config(dir: &Path) -> Result<Option<Project>, ConfigError> {
  read_project(dir, None)
}

/// Reads the config of a local worker folder (none at all means every
/// default) under environment `env`; `node` is what the node opens to every
/// worker's `fetch()`.
pub fn read_worker_settings(
  dir: &Path,
  env: Option<&str>,
  node: &OutboundPolicy,
) -> Result<WorkerSettings, ConfigError> {
  let project = read_project(dir, env)?.unwrap_or_default();
  let limits = worker_limits(
    &project.limits,
    project.allow_eval,
    &project.outbound_allow,
    node,
  )
  .map_err(|e| ConfigError {
    path: project
      .files
      .last()
      .cloned()
      .unwrap_or_else(|| dir.join(CONFIG_FILE)),
    message: e.to_string(),
  })?;
  let crons = project
    .crons
    .iter()
    .filter_map(|cron| crate::scheduled::CronTrigger::parse(cron).ok())
    .collect();
  Ok(WorkerSettings {
    crons,
    nodejs_compat: project.nodejs_compat(),
    kv_namespaces: project.kv_for_local(),
    services: project.services,
    dispatch_namespaces: project.dispatch_namespaces,
    assets: project.assets,
    name: project.name,
    main: project.main,
    vars: project.vars,
    limits,
  })
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
