//! The other workers of `outpost dev a/ b/`: each from its own folder (its
//! config, `.dev.vars`, KV bindings and service bindings), run beside the
//! first and reached through service bindings, `<name>.localhost` or
//! `/<name>/`; and the user workers of `--user-worker ns=dir`, reached
//! only through a dispatch namespace binding.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use outpost_edge::assets::{self, AssetCache, AssetSite, folder_site};
use outpost_edge::config::{kv_env, read_dev_vars, read_worker_settings};
use outpost_edge::local::{LocalWorker, state_dir};
use outpost_edge::services::ServiceRouter;
use outpost_edge::{Dispatcher, Routes};
use outpost_protocol::{KvBackend, ServiceBinding};
use outpost_runtime::{OutboundPolicy, WorkerEnv};

/// One more worker for the dev server.
pub struct Companion {
  /// Its name: the config's `name`, else its folder's; for a user worker,
  /// `<namespace>/<name>`.
  pub name: String,
  /// The worker, loaded.
  pub worker: LocalWorker,
  /// The folders its modules came from, to watch.
  pub dirs: BTreeSet<PathBuf>,
  /// Its own service bindings.
  pub bound: Vec<ServiceBinding>,
  /// Its `[assets]`, as found at start.
  pub site: Option<Arc<AssetSite>>,
}

/// What every companion shares with the first worker.
pub struct Shared<'a> {
  /// The config environment (`--env`).
  pub env: Option<&'a str>,
  /// What the node opens to `fetch()`.
  pub outbound: &'a OutboundPolicy,
  /// The dev server's KV store.
  pub kv: &'a Arc<dyn KvBackend>,
  /// The dev server's routes, for service bindings.
  pub routes: &'a Routes,
  /// Its executors.
  pub dispatcher: &'a Arc<Dispatcher>,
}

/// The entry module of the project in `dir`: its config's `main`, else
/// worker.js or worker.ts there, else for a project of assets alone the
/// worker behind them; `None` if there is none.
pub fn find_entry(dir: &Path, env: Option<&str>) -> anyhow::Result<Option<PathBuf>> {
  let config = outpost_edge::config::read_project(dir, env)?;
  if let Some(main) = config.as_ref().and_then(|c| c.main.clone()) {
    return Ok(Some(dir.join(main)));
  }
  let found = ["worker.js", "worker.ts"]
    .into_iter()
    .map(|name| dir.join(name))
    .find(|path| path.is_file());
  let assets_only = config
    .and_then(|c| c.assets)
    .is_some_and(|a| a.directory.is_some());
  if found.is_none() && assets_only {
    return Ok(Some(assets::assets_only_entry(dir)?));
  }
  Ok(found)
}

/// [`find_entry`], or an error naming the folder.
pub fn entry_in(dir: &Path, env: Option<&str>) -> anyhow::Result<PathBuf> {
  find_entry(dir, env)?.with_context(|| {
    format!(
      "{}: no `main` in its config, and no worker.js or worker.ts",
      dir.display()
    )
  })
}

/// A dev worker about to start: where it is and how it runs.
pub struct Loaded<'a> {
  /// Its name.
  pub name: &'a str,
  /// Its entry module.
  pub entry: &'a Path,
  /// Its project folder (for `.outpost/`).
  pub folder: &'a Path,
  /// Its limits.
  pub limits: outpost_runtime::WorkerLimits,
  /// Whether `nodejs_compat` is on.
  pub nodejs_compat: bool,
}

impl Loaded<'_> {
  /// Starts it with `env` on its executor, at once, so a broken top level
  /// shows before serving; returns it and the folders to watch.
  pub async fn start(
    self,
    env: WorkerEnv,
    dispatcher: &Dispatcher,
  ) -> anyhow::Result<(LocalWorker, BTreeSet<PathBuf>)> {
    let worker = LocalWorker {
      name: self.name.to_owned(),
      entry: self.entry.to_owned(),
      env: Arc::new(env),
      limits: self.limits,
      executor: dispatcher.executor_for(self.name).clone(),
      lazy: false,
      code_cache_dir: Some(state_dir(self.folder).join("code-cache")),
      nodejs_compat: self.nodejs_compat,
    };
    let dirs = worker
      .load()
      .await
      .with_context(|| format!("loading {}", self.entry.display()))?;
    Ok((worker, dirs))
  }
}

/// Loads the worker at `path` (a project folder, or an entry module whose
/// folder holds its config), as a user worker of dispatch namespace
/// `namespace` if one is given.
pub async fn start(
  path: &Path,
  namespace: Option<&str>,
  shared: &Shared<'_>,
) -> anyhow::Result<Companion> {
  let (folder, entry) = match path.is_dir() {
    true => (path.to_owned(), entry_in(path, shared.env)?),
    false => (
      path.parent().unwrap_or(Path::new(".")).to_owned(),
      path.to_owned(),
    ),
  };
  let settings = read_worker_settings(&folder, shared.env, shared.outbound)?;
  let name = match &settings.name {
    Some(name) => name.clone(),
    None => std::fs::canonicalize(&folder)
      .ok()
      .and_then(|dir| dir.file_name()?.to_str().map(str::to_owned))
      .context("name the worker: `name` in its config")?,
  };
  let name = match namespace {
    Some(namespace) => outpost_protocol::namespaced_worker(namespace, &name),
    None => name,
  };
  let vars = settings
    .vars
    .clone()
    .into_iter()
    .chain(read_dev_vars(&folder, shared.env)?)
    .collect();
  let bound = settings.services.clone();
  let site = match &settings.assets {
    Some(config) => {
      let assets_only = entry.ends_with("assets-only-worker.js");
      folder_site(&folder, config, assets_only, AssetCache::default())?.map(|(site, _)| site)
    }
    None => None,
  };
  let env = WorkerEnv {
    vars,
    kv: kv_env(&settings.kv_namespaces, shared.kv),
    nodejs_compat: settings.nodejs_compat,
    assets: site.as_ref().and_then(assets::env_binding),
    services: ServiceRouter::bindings(
      &bound,
      &settings.dispatch_namespaces,
      shared.routes,
      shared.dispatcher,
    ),
  };
  let loaded = Loaded {
    name: &name,
    entry: &entry,
    folder: &folder,
    limits: settings.limits,
    nodejs_compat: settings.nodejs_compat,
  };
  let (worker, dirs) = loaded.start(env, shared.dispatcher).await?;
  Ok(Companion {
    name,
    worker,
    dirs,
    bound,
    site,
  })
}
