//! Which executor thread runs a worker, and which serves a connection.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

use outpost_runtime::{ExecutorHandle, spawn_executor};

use crate::routes::Routes;

/// The node's executor threads. A worker always runs on the same thread,
/// chosen by a hash of its name, so its isolate is never shared or moved.
pub struct Dispatcher {
  executors: Vec<ExecutorHandle>,
  next_connection: AtomicUsize,
}

impl Dispatcher {
  /// Starts `threads` executor threads (at least one).
  pub fn start(threads: usize) -> std::io::Result<Self> {
    let executors = (0..threads.max(1))
      .map(|i| spawn_executor(&format!("outpost-exec-{i}")))
      .collect::<std::io::Result<_>>()?;
    Ok(Self {
      executors,
      next_connection: AtomicUsize::new(0),
    })
  }

  /// The executor thread that should serve a new connection. Connections
  /// run on executor threads, so a request for a worker on the same thread
  /// is dispatched without waking another one. With a single routed worker
  /// that is always its thread; otherwise connections are spread in turn.
  pub fn executor_for_connection(&self, routes: &Routes) -> &ExecutorHandle {
    let table = routes.current();
    let mut workers = table.workers();
    match (workers.next(), workers.next()) {
      (Some(only), None) => self.executor_for(only),
      _ => self.next_executor(),
    }
  }

  /// The next executor in turn, for work that belongs to no worker.
  pub fn next_executor(&self) -> &ExecutorHandle {
    let turn = self.next_connection.fetch_add(1, Ordering::Relaxed);
    &self.executors[turn % self.executors.len()]
  }

  /// The executor that owns `worker`.
  pub fn executor_for(&self, worker: &str) -> &ExecutorHandle {
    let mut hasher = DefaultHasher::new();
    worker.hash(&mut hasher);
    let index = (hasher.finish() % self.executors.len() as u64) as usize;
    &self.executors[index]
  }
}
