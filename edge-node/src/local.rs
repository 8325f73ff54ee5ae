//! Workers served from local files: load, install, and reload when a module
//! changes (`outpost dev`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use outpost_runtime::{ExecutorHandle, WorkerBundle, WorkerEnv, WorkerError, WorkerVersion};
use tokio::sync::mpsc;

/// Quiet time after a file event before reloading, so that an editor's
/// burst of writes becomes one reload.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// File endings that can be modules; other files changing is no reason to reload.
const MODULE_ENDINGS: [&str; 7] = ["js", "mjs", "ts", "mts", "jsx", "tsx", "json"];

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
  /// The executor that runs it.
  pub executor: ExecutorHandle,
}

impl LocalWorker {
  /// Builds the bundle from disk and installs it. Returns the directories
  /// its modules live in. On error the previously installed version (if
  /// any) keeps serving.
  pub async fn load(&self) -> Result<BTreeSet<PathBuf>, WorkerError> {
    let bundle = WorkerBundle::load(&self.entry)?;
    let dirs = bundle
      .files()
      .iter()
      .filter_map(|f| f.parent().map(Path::to_owned))
      .collect();
    let version = WorkerVersion {
      bundle: Arc::new(bundle),
      env: self.env.clone(),
    };
    self.executor.install(&self.name, version).await?;
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
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
      if let Ok(event) = event
        && event.paths.iter().any(|p| is_module_file(p))
        && !event.kind.is_access()
      {
        let _ = tx.send(());
      }
    })?;
    for dir in &dirs {
      watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    tokio::pin!(shutdown);
    loop {
      tokio::select! {
        () = &mut shutdown => return Ok(()),
        Some(()) = rx.recv() => {}
      }
      // Let the burst settle, then drop the events it queued.
      tokio::time::sleep(DEBOUNCE).await;
      while rx.try_recv().is_ok() {}
      match self.load().await {
        Ok(new_dirs) => {
          tracing::info!("reloaded {}", self.entry.display());
          for dir in new_dirs.difference(&dirs) {
            watcher.watch(dir, RecursiveMode::NonRecursive)?;
          }
          for dir in dirs.difference(&new_dirs) {
            let _ = watcher.unwatch(dir);
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

fn is_module_file(path: &Path) -> bool {
  path
    .extension()
    .and_then(|e| e.to_str())
    .is_some_and(|e| MODULE_ENDINGS.contains(&e))
}
