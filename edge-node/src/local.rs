//! Workers served from local files: load, install, and reload when a module
//! changes (`outpost dev`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use outpost_runtime::resolve::ProjectResolver;
use outpost_runtime::{
  ExecutorHandle, WorkerBundle, WorkerEnv, WorkerError, WorkerLimits, WorkerVersion,
};
use tokio::sync::mpsc;

/// Quiet time after a file event before reloading, so that an editor's
/// burst of writes becomes one reload.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// File endings that can be modules; other files changing is no reason to reload.
const MODULE_ENDINGS: [&str; 9] = ["js", "mjs", "cjs", "ts", "mts", "cts", "jsx", "tsx", "json"];

/// Why watching could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
  /// The file watcher failed.
  #[error("cannot watch files: {0}")]
  Notify(#[from] notify::Error),
}

/// One worker whose code lives in local files.
pub struct LocalWorker {
  /// The worker's name, as routed.
  pub name: String,
  /// The entry module.
  pub entry: PathBuf,
  /// Its bindings.
  pub env: Arc<WorkerEnv>,
  /// The limits it runs under.
  pub limits: WorkerLimits,
  /// The executor that runs it.
  pub executor: ExecutorHandle,
  /// Start its isolate on its first request rather than at load (see
  /// [`ExecutorHandle::stage`]).
  pub lazy: bool,
  /// Where to keep V8 code caches on disk (see
  /// [`WorkerBundle::with_code_cache_dir`]); `None` keeps them in memory.
  pub code_cache_dir: Option<PathBuf>,
  /// Whether bare Node names (`buffer`, `events`) import Node's built-ins
  /// (`nodejs_compat`).
  pub nodejs_compat: bool,
}

/// Where a worker's files keep Outpost's own state: `.outpost/` in `dir`.
pub fn state_dir(dir: &Path) -> PathBuf {
  dir.join(".outpost")
}

impl LocalWorker {
  /// Builds the bundle from disk and installs (or stages) it. Returns the
  /// directories its modules live in. On error the previously installed
  /// version (if any) keeps serving.
  pub async fn load(&self) -> Result<BTreeSet<PathBuf>, WorkerError> {
    let resolver = ProjectResolver::new(self.nodejs_compat);
    let mut bundle = WorkerBundle::load_with(&self.entry, &resolver)?;
    if let Some(dir) = &self.code_cache_dir {
      bundle = bundle.with_code_cache_dir(dir);
    }
    let dirs = bundle
      .files()
      .iter()
      .filter_map(|f| f.parent().map(Path::to_owned))
      .collect();
    let version = WorkerVersion {
      bundle: Arc::new(bundle),
      env: self.env.clone(),
      limits: self.limits.clone(),
    };
    if self.lazy {
      self.executor.stage(&self.name, version).await?;
    } else {
      self.executor.install(&self.name, version).await?;
    }
    Ok(dirs)
  }

  /// Reloads the worker whenever one of its modules changes, until
  /// `shutdown` resolves. `dirs` are the directories of the version that
  /// is serving now.
  pub async fn watch(
    &self,
    mut dirs: BTreeSet<PathBuf>,
    shutdown: impl std::future::Future<Output = ()>,
  ) -> Result<(), WatchError> {
    let mut events = FileEvents::new()?;
    for dir in &dirs {
      events.watch(dir, RecursiveMode::NonRecursive)?;
    }
    tokio::pin!(shutdown);
    loop {
      let changed = tokio::select! {
        () = &mut shutdown => return Ok(()),
        changed = events.next_batch() => changed,
      };
      if !changed.iter().any(|p| is_module_file(p)) {
        continue;
      }
      match self.load().await {
        Ok(new_dirs) => {
          tracing::info!("reloaded {}", self.entry.display());
          for dir in new_dirs.difference(&dirs) {
            events.watch(dir, RecursiveMode::NonRecursive)?;
          }
          for dir in dirs.difference(&new_dirs) {
            events.unwatch(dir);
          }
          dirs = new_dirs;
        }
        Err(err) => {
          tracing::error!("reload failed, still serving the last good version:\n{err}");
        }
      }
    }
  }
}

/// File changes, delivered in batches: a batch is every path touched from
/// the first event until [`DEBOUNCE`] after it, so an editor's burst of
/// writes becomes one reload.
pub(crate) struct FileEvents {
  watcher: notify::RecommendedWatcher,
  rx: mpsc::UnboundedReceiver<Vec<PathBuf>>,
}

impl FileEvents {
  pub(crate) fn new() -> Result<Self, WatchError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
      if let Ok(event) = event
        && !event.kind.is_access()
      {
        let _ = tx.send(event.paths);
      }
    })?;
    Ok(Self { watcher, rx })
  }

  pub(crate) fn watch(&mut self, path: &Path, mode: RecursiveMode) -> Result<(), WatchError> {
    Ok(self.watcher.watch(path, mode)?)
  }

  pub(crate) fn unwatch(&mut self, path: &Path) {
    // Unwatching a folder that was deleted fails; nothing is left to stop.
    let _ = self.watcher.unwatch(path);
  }

  /// Waits for the next batch of changed paths.
  pub(crate) async fn next_batch(&mut self) -> BTreeSet<PathBuf> {
    let mut batch = BTreeSet::new();
    match self.rx.recv().await {
      Some(paths) => batch.extend(paths),
      // The watcher lives as long as self, so its sender never drops.
      None => std::future::pending::<()>().await,
    }
    tokio::time::sleep(DEBOUNCE).await;
    while let Ok(paths) = self.rx.try_recv() {
      batch.extend(paths);
    }
    batch
  }
}

pub(crate) fn is_module_file(path: &Path) -> bool {
  path
    .extension()
    .and_then(|e| e.to_str())
    .is_some_and(|e| MODULE_ENDINGS.contains(&e))
}
