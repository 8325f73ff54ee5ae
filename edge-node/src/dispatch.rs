//! Which executor thread runs a worker, and which serves a connection.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use outpost_runtime::{ExecutorHandle, ExecutorOptions, ExecutorStats, spawn_executor_with};

use crate::routes::Routes;

/// The node's executor threads. A worker always runs on the same thread,
/// chosen by a hash of its name, so its isolate is never shared or moved.
pub struct Dispatcher {
  executors: Vec<ExecutorHandle>,
}

impl Dispatcher {
  /// Starts `threads` executor threads (at least one) with default options.
  pub fn start(threads: usize) -> std::io::Result<Self> {
    Self::start_with(threads, &ExecutorOptions::default())
  }

  /// Starts `threads` executor threads (at least one) set up as `options`
  /// says; each executor gets the same options.
  pub fn start_with(threads: usize, options: &ExecutorOptions) -> std::io::Result<Self> {
    let executors = (0..threads.max(1))
      .map(|i| spawn_executor_with(&format!("outpost-exec-{i}"), options.clone()))
      .collect::<std::io::Result<_>>()?;
    Ok(Self { executors })
  }

  /// The executor thread that should serve a new connection, if any.
  ///
  /// With a single routed worker, its own thread: requests then reach the
  /// isolate without waking another thread. With several, none: the
  /// connection stays on the HTTP runtime, so one worker's runaway JS
  /// cannot stall the connections of others on its thread.
  pub fn executor_for_connection(&self, routes: &Routes) -> Option<&ExecutorHandle> {
    let table = routes.current();
    let mut workers = table.workers();
    match (workers.next(), workers.next()) {
      (Some(only), None) => Some(self.executor_for(only)),
      _ => None,
    }
  }

  /// The executor that owns `worker`.
  pub fn executor_for(&self, worker: &str) -> &ExecutorHandle {
    &self.executors[self.executor_index(worker)]
  }

  /// Every executor's stats, summed.
  pub async fn stats(&self) -> ExecutorStats {
    let mut total = ExecutorStats::default();
    for executor in &self.executors {
      if let Ok(stats) = executor.stats().await {
        total.add(&stats);
      }
    }
    total
  }

  /// Which executor thread (0-based) owns `worker`.
  pub fn executor_index(&self, worker: &str) -> usize {
    let mut hasher = DefaultHasher::new();
    worker.hash(&mut hasher);
    (hasher.finish() % self.executors.len() as u64) as usize
  }
}
