//! A folder of workers, one per subfolder (`outpost edge --local <dir>`):
//! installs each (with its `[assets]`, scanned as it is installed),
//! keeps the routing table in step, and follows additions, edits and
//! removals without a restart.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use outpost_protocol::{DispatchNamespaceBinding, KvBackend, KvBinding, ServiceBinding};
use outpost_runtime::{OutboundPolicy, WorkerEnv, WorkerLimits};

use crate::assets::{AssetCache, AssetSite};
use crate::config::{AssetsConfig, kv_env, read_worker_settings};
use crate::dispatch::Dispatcher;
use crate::local::{FileEvents, LocalWorker, WatchError, state_dir};
use crate::routes::{RouteTable, Routes};
use crate::services::ServiceRouter;

/// How often the folder is rescanned for changes the watcher missed.
const RESCAN_INTERVAL: Duration = Duration::from_secs(2);

/// Entry modules looked for when `outpost.toml` names none.
const DEFAULT_ENTRIES: [&str; 2] = ["worker.js", "worker.ts"];

/// Why one worker folder cannot be served. Other folders are unaffected.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
  /// The folder name cannot be a host label.
  #[error("{0:?} is not a valid worker name (use lowercase letters, digits and '-')")]
  BadName(String),
  /// `outpost.toml` could not be read or parsed.
  #[error("{path}: {message}")]
  Config {
    /// The config file.
    path: PathBuf,
    /// What is wrong with it.
    message: String,
  },
  /// The folder's `[assets]` could not be served.
  #[error("{dir}: [assets]: {why}")]
  Assets {
    /// The worker's folder.
    dir: PathBuf,
    /// What failed.
    why: String,
  },
  /// No entry module was found.
  #[error("{0}: no worker.js or worker.ts, and no config file names a `main`")]
  NoEntry(PathBuf),
}

/// What one worker folder declares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WorkerSpec {
  entry: PathBuf,
  vars: BTreeMap<String, String>,
  limits: WorkerLimits,
  kv_namespaces: Vec<KvBinding>,
  nodejs_compat: bool,
  services: Vec<ServiceBinding>,
  dispatch_namespaces: Vec<DispatchNamespaceBinding>,
  assets: Option<AssetsConfig>,
}

/// Whether `name` can be a DNS label, so that `<name>.localhost` works.
fn valid_name(name: &str) -> bool {
  !name.is_empty()
    && name.len() <= 63
    && !name.starts_with('-')
    && !name.ends_with('-')
    && name
      .bytes()
      .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Reads one worker folder.
fn read_spec(dir: &Path, node: &OutboundPolicy) -> Result<WorkerSpec, FolderError> {
  let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
  if !valid_name(name) {
    return Err(FolderError::BadName(name.to_owned()));
  }
  let settings = read_worker_settings(dir, None, node).map_err(|e| FolderError::Config {
    path: e.path,
    message: e.message,
  })?;
  let assets_only = settings
    .assets
    .as_ref()
    .is_some_and(|a| a.directory.is_some());
  let entry = match settings.main {
    Some(main) => dir.join(main),
    None => match DEFAULT_ENTRIES
      .iter()
      .map(|e| dir.join(e))
      .find(|p| p.is_file())
    {
      Some(entry) => entry,
      // A project of static assets alone runs behind a worker of 404s.
      None if assets_only => {
        crate::assets::assets_only_entry(dir).map_err(|err| FolderError::Assets {
          dir: dir.to_owned(),
          why: err.to_string(),
        })?
      }
      None => return Err(FolderError::NoEntry(dir.to_owned())),
    },
  };
  Ok(WorkerSpec {
    entry,
    vars: settings.vars,
    limits: settings.limits,
    kv_namespaces: settings.kv_namespaces,
    nodejs_compat: settings.nodejs_compat,
    services: settings.services,
    dispatch_namespaces: settings.dispatch_namespaces,
    assets: settings.assets,
  })
}

/// The worker folders under `root`, by name. Hidden folders are skipped.
fn list_folders(root: &Path) -> std::io::Result<BTreeMap<String, PathBuf>> {
  let mut folders = BTreeMap::new();
  for entry in std::fs::read_dir(root)? {
    let entry = entry?;
    let name = entry.file_name().to_string_lossy().into_owned();
    if !name.starts_with('.') && entry.file_type()?.is_dir() {
      folders.insert(name, entry.path());
    }
  }
  Ok(folders)
}

/// Serves every worker folder under a root folder.
pub struct LocalFolder {
  root: PathBuf,
  dispatcher: Arc<Dispatcher>,
  routes: Routes,
  /// The spec each installed worker was installed from.
  installed: HashMap<String, WorkerSpec>,
  /// Folders that could not be served; retried when they change.
  failed: BTreeSet<String>,
  /// What the node opens to every worker's `fetch()`.
  outbound: OutboundPolicy,
  /// What serves the workers' KV bindings, if anything.
  kv: Option<Arc<dyn KvBackend>>,
  /// The static assets of the workers that have them.
  sites: HashMap<String, Arc<AssetSite>>,
  /// Asset bytes kept in memory, shared by every site.
  asset_cache: AssetCache,
}

impl LocalFolder {
  /// A source for the workers under `root`, installing on `dispatcher`'s
  /// executors and publishing to `routes`.
  pub fn new(root: PathBuf, dispatcher: Arc<Dispatcher>, routes: Routes) -> Self {
    Self {
      root,
      dispatcher,
      routes,
      installed: HashMap::new(),
      failed: BTreeSet::new(),
      outbound: OutboundPolicy::default(),
      kv: None,
      sites: HashMap::new(),
      asset_cache: AssetCache::default(),
    }
  }

  /// Serves every worker's KV bindings from `kv`. Without it, a worker
  /// with KV bindings is not served.
  pub fn with_kv(mut self, kv: Arc<dyn KvBackend>) -> Self {
    self.kv = Some(kv);
    self
  }

  /// Opens what `outbound` allows to every worker's `fetch()`, on top of
  /// each worker's own `[outbound] allow`.
  pub fn with_outbound(mut self, outbound: OutboundPolicy) -> Self {
    self.outbound = outbound;
    self
  }

  /// Installs every worker folder. A folder that fails is logged and left
  /// out; the others serve. Errors only if `root` cannot be listed.
  pub async fn load(&mut self) -> std::io::Result<()> {
    let names: BTreeSet<String> = list_folders(&self.root)?.into_keys().collect();
    self.sync(&names).await;
    Ok(())
  }

  /// The names of the workers being served.
  pub fn served(&self) -> BTreeSet<String> {
    self.installed.keys().cloned().collect()
  }

  /// Follows changes under the root until `shutdown` resolves.
  pub async fn watch(
    &mut self,
    shutdown: impl std::future::Future<Output = ()>,
  ) -> Result<(), WatchError> {
    let mut events = FileEvents::new()?;
    events.watch(&self.root, RecursiveMode::Recursive)?;
    // A file written into a folder just created can beat the watch on that
    // folder, and its event is lost; a periodic rescan catches such folders.
    let mut rescan = tokio::time::interval(RESCAN_INTERVAL);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
      let changed = tokio::select! {
        () = &mut shutdown => return Ok(()),
        changed = events.next_batch() => changed,
        _ = rescan.tick() => {
          let unknown = self.unknown_or_gone();
          if !unknown.is_empty() {
            self.sync(&unknown).await;
          }
          continue;
        }
      };
      // Hidden folders are not workers, and hidden paths inside a worker
      // (its `.outpost/` state, say) are no reason to reload it.
      let names: BTreeSet<String> = changed
        .iter()
        .filter_map(|path| path.strip_prefix(&self.root).ok())
        .filter(|relative| {
          !relative
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
        })
        .filter_map(|relative| relative.components().next())
        .map(|first| first.as_os_str().to_string_lossy().into_owned())
        .collect();
      if !names.is_empty() {
        self.sync(&names).await;
      }
    }
  }

  /// The static assets of the worker in `dir`, scanned now, if its config
  /// has `[assets]` with a directory.
  fn site_of(&self, dir: &Path, spec: &WorkerSpec) -> Result<Option<Arc<AssetSite>>, FolderError> {
    let Some(config) = &spec.assets else {
      return Ok(None);
    };
    let assets_only = spec.entry.ends_with("assets-only-worker.js");
    crate::assets::folder_site(dir, config, assets_only, self.asset_cache.clone())
      .map(|site| site.map(|(site, _)| site))
      .map_err(|err| FolderError::Assets {
        dir: dir.to_owned(),
        why: err.to_string(),
      })
  }

  /// Folders neither served nor known to fail, and served workers whose
  /// folder is gone.
  fn unknown_or_gone(&self) -> BTreeSet<String> {
    let Ok(present) = list_folders(&self.root) else {
      return BTreeSet::new();
    };
    let new = present
      .keys()
      .filter(|n| !self.installed.contains_key(*n) && !self.failed.contains(*n));
    let gone = self.installed.keys().filter(|n| !present.contains_key(*n));
    new.chain(gone).cloned().collect()
  }

  /// Brings the named workers in line with their folders, then republishes
  /// the routing table.
  async fn sync(&mut self, names: &BTreeSet<String>) {
    let mut gone = Vec::new();
    for name in names {
      let dir = self.root.join(name);
      self.failed.remove(name);
      if !dir.is_dir() {
        if self.installed.remove(name).is_some() {
          gone.push(name);
        }
        self.sites.remove(name);
        continue;
      }
      let spec = match read_spec(&dir, &self.outbound) {
        Ok(spec) => spec,
        // Likely still being written: the rescan tries again.
        Err(FolderError::NoEntry(_)) if !self.installed.contains_key(name) => continue,
        Err(err) => {
          self.failed.insert(name.clone());
          tracing::error!(worker = %name, "not serving this folder: {err}");
          continue;
        }
      };
      let kv = match &self.kv {
        Some(backend) => kv_env(&spec.kv_namespaces, backend),
        None if spec.kv_namespaces.is_empty() => BTreeMap::new(),
        None => {
          self.failed.insert(name.clone());
          tracing::error!(worker = %name, "not serving this folder: it binds KV namespaces, and this node has no KV store");
          continue;
        }
      };
      let site = match self.site_of(&dir, &spec) {
        Ok(site) => site,
        Err(err) => {
          self.failed.insert(name.clone());
          tracing::error!(worker = %name, "not serving this folder: {err}");
          continue;
        }
      };
      let worker = LocalWorker {
        name: name.clone(),
        entry: spec.entry.clone(),
        env: Arc::new(WorkerEnv {
          vars: spec.vars.clone(),
          kv,
          nodejs_compat: spec.nodejs_compat,
          assets: site.as_ref().and_then(crate::assets::env_binding),
          // Bound by name: a worker folder added later is reachable too.
          services: ServiceRouter::bindings(
            &spec.services,
            &spec.dispatch_namespaces,
            &self.routes,
            &self.dispatcher,
          ),
        }),
        limits: spec.limits.clone(),
        executor: self.dispatcher.executor_for(name).clone(),
        lazy: true,
        code_cache_dir: Some(state_dir(&self.root.join(name)).join("code-cache")),
        nodejs_compat: spec.nodejs_compat,
      };
      match worker.load().await {
        Ok(_) => {
          let verb = if self.installed.contains_key(name) {
            "reloaded"
          } else {
            "serving"
          };
          tracing::info!(worker = %name, "{verb} {}", spec.entry.display());
          self.installed.insert(name.clone(), spec);
          match site {
            Some(site) => self.sites.insert(name.clone(), site),
            None => self.sites.remove(name),
          };
        }
        Err(err) if self.installed.contains_key(name) => {
          tracing::error!(worker = %name, "reload failed, still serving the last good version:\n{err}");
        }
        Err(err) => {
          tracing::error!(worker = %name, "cannot start:\n{err}");
          self.failed.insert(name.clone());
        }
      }
    }
    // Unroute removed workers before retiring their isolates, so no request
    // is routed to a worker that is already gone.
    let mut table = RouteTable::named(self.installed.keys().cloned());
    for (name, site) in &self.sites {
      table = table.with_assets(name.clone(), site.clone());
    }
    self.routes.replace(table);
    for name in gone {
      let _ = self.dispatcher.executor_for(name).remove(name).await;
      tracing::info!(worker = %name, "folder removed; no longer serving");
    }
  }
}
