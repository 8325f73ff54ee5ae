//! The outside of an executor: the handle other threads hold, the messages
//! it sends, the options and statistics, and starting the thread.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use tokio::runtime::LocalOptions;
use tokio::sync::{mpsc, oneshot};

use super::Executor;
use crate::ext::cache::ResponseCache;
use crate::ext::serve::{ServeRequest, WorkerRequest, WorkerResponse};
use crate::ext::worker::LogSink;
use crate::limits::{CpuHistogram, CpuWatchdog};
use crate::pool::DEFAULT_POOL_SIZE;
use crate::residency::ResidencyPolicy;
use crate::worker::{WorkerError, WorkerVersion};

/// Why a request could not be dispatched to a worker.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
  /// The executor thread has stopped.
  #[error("the executor thread has stopped")]
  ExecutorGone,
  /// The isolate went away before it answered.
  #[error("the worker's isolate stopped before it answered")]
  NoAnswer,
}

/// A job to run on the executor's thread; see [`ExecutorHandle::spawn`].
pub(super) type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

#[allow(
  clippy::large_enum_variant,
  reason = "requests are nearly every message: boxing them would cost an allocation each"
)]
pub(super) enum Message {
  Spawn(Job),
  /// Install a version now, or (`lazy`) stage it for the next request.
  Install {
    worker: String,
    version: WorkerVersion,
    lazy: bool,
    reply: oneshot::Sender<Result<(), WorkerError>>,
  },
  Request {
    worker: String,
    serve: ServeRequest,
  },
  Remove {
    worker: String,
    reply: oneshot::Sender<bool>,
  },
  Stats {
    reply: oneshot::Sender<ExecutorStats>,
  },
  /// Start the worker's isolate now if it has none (staged or evicted).
  Warm {
    worker: String,
  },
}

/// A snapshot of one executor's state; counts are since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecutorStats {
  /// Workers with a live isolate.
  pub resident: usize,
  /// Workers without an isolate (staged and not yet asked for, or evicted),
  /// waiting for their next request.
  pub dormant: usize,
  /// Pre-warmed blank isolates ready.
  pub pooled: usize,
  /// Isolates evicted.
  pub evictions: u64,
  /// Workers started from a pooled isolate.
  pub warm_starts: u64,
  /// Workers started in a new isolate.
  pub cold_starts: u64,
  /// Isolates terminated for their CPU time.
  pub cpu_limit: u64,
  /// Isolates terminated for their heap.
  pub memory_limit: u64,
  /// Requests answered 504 for their wall-clock time.
  pub wall_limit: u64,
  /// Requests refused 503 because the worker had too many in flight and
  /// waiting.
  pub overloaded: u64,
  /// CPU time per request answered.
  pub requests_cpu: CpuHistogram,
}

impl ExecutorStats {
  /// Adds another executor's figures to these.
  pub fn add(&mut self, other: &ExecutorStats) {
    self.resident += other.resident;
    self.dormant += other.dormant;
    self.pooled += other.pooled;
    self.evictions += other.evictions;
    self.warm_starts += other.warm_starts;
    self.cold_starts += other.cold_starts;
    self.cpu_limit += other.cpu_limit;
    self.memory_limit += other.memory_limit;
    self.wall_limit += other.wall_limit;
    self.overloaded += other.overloaded;
    self.requests_cpu.add(&other.requests_cpu);
  }
}

/// A cheap, cloneable handle to one executor thread.
#[derive(Clone)]
pub struct ExecutorHandle {
  tx: mpsc::UnboundedSender<Message>,
}

impl ExecutorHandle {
  /// Sends the message `make` builds around a reply channel and waits for
  /// the reply; `None` if the executor thread has stopped.
  async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Message) -> Option<T> {
    let (reply, answer) = oneshot::channel();
    self.tx.send(make(reply)).ok()?;
    answer.await.ok()
  }

  /// Starts `version` of `worker` on this executor. On success it replaces
  /// the version serving before, which finishes its in-flight requests on
  /// the old code. On failure the old version keeps serving.
  pub async fn install(&self, worker: &str, version: WorkerVersion) -> Result<(), WorkerError> {
    self.put(worker, version, false).await
  }

  /// Makes `version` the one `worker` runs, started on the worker's next
  /// request rather than now; a node with thousands of workers then holds
  /// isolates only for those in use. A worker running now is replaced at
  /// once, as by [`install`](Self::install) (so its requests never wait on a
  /// start), and an error in its top level keeps the old version serving.
  pub async fn stage(&self, worker: &str, version: WorkerVersion) -> Result<(), WorkerError> {
    self.put(worker, version, true).await
  }

  async fn put(&self, worker: &str, version: WorkerVersion, lazy: bool) -> Result<(), WorkerError> {
    let worker = worker.to_owned();
    self
      .ask(|reply| Message::Install {
        worker,
        version,
        lazy,
        reply,
      })
      .await
      .ok_or(WorkerError::ExecutorGone)?
  }

  /// Stops serving `worker`: its isolate is retired and finishes what is in
  /// flight. Returns whether the worker was installed.
  pub async fn remove(&self, worker: &str) -> Result<bool, DispatchError> {
    let worker = worker.to_owned();
    self
      .ask(|reply| Message::Remove { worker, reply })
      .await
      .ok_or(DispatchError::ExecutorGone)
  }

  /// Starts `worker`'s isolate now if it has none, so that its next
  /// request finds it warm (a TLS handshake naming its host, say). Does
  /// nothing for a worker with an isolate, or none installed.
  pub fn warm(&self, worker: &str) {
    let _ = self.tx.send(Message::Warm {
      worker: worker.to_owned(),
    });
  }

  /// The executor's current state.
  pub async fn stats(&self) -> Result<ExecutorStats, DispatchError> {
    self
      .ask(|reply| Message::Stats { reply })
      .await
      .ok_or(DispatchError::ExecutorGone)
  }

  /// Runs a task on this executor's thread. `make` is called there, so the
  /// future it returns need not be Send. Work that talks to the workers of
  /// this thread (an HTTP connection, say) then does so without waking
  /// another thread.
  pub fn spawn<F, Fut>(&self, make: F) -> Result<(), DispatchError>
  where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
  {
    let job: Job = Box::new(move || Box::pin(make()));
    self
      .tx
      .send(Message::Spawn(job))
      .map_err(|_| DispatchError::ExecutorGone)
  }

  /// Runs one request through `worker` and returns its response head; the
  /// body may still be streaming.
  pub async fn dispatch(
    &self,
    worker: &str,
    request: WorkerRequest,
  ) -> Result<WorkerResponse, DispatchError> {
    let (reply, answer) = oneshot::channel();
    let serve = ServeRequest { request, reply };
    let message = Message::Request {
      worker: worker.to_owned(),
      serve,
    };
    self
      .tx
      .send(message)
      .map_err(|_| DispatchError::ExecutorGone)?;
    answer.await.map_err(|_| DispatchError::NoAnswer)
  }
}

/// How an executor thread is set up.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
  /// Blank isolates kept pre-warmed (0 turns the pool off).
  pub pool_size: usize,
  /// When idle isolates are evicted.
  pub residency: ResidencyPolicy,
  /// The node's Cache API store; every executor of a node shares one.
  pub response_cache: ResponseCache,
  /// Where workers' console lines go besides the node's log.
  pub log_sink: Option<std::sync::Arc<dyn LogSink>>,
}

impl Default for ExecutorOptions {
  fn default() -> Self {
    Self {
      pool_size: DEFAULT_POOL_SIZE,
      residency: ResidencyPolicy::default(),
      response_cache: ResponseCache::default(),
      log_sink: None,
    }
  }
}

/// Starts an executor thread named `name` with default options; see
/// [`spawn_executor_with`].
pub fn spawn_executor(name: &str) -> std::io::Result<ExecutorHandle> {
  spawn_executor_with(name, ExecutorOptions::default())
}

/// Starts an executor thread named `name`, with its CPU watchdog and its
/// pool of pre-warmed isolates. It stops when every handle to it has been
/// dropped.
pub fn spawn_executor_with(
  name: &str,
  options: ExecutorOptions,
) -> std::io::Result<ExecutorHandle> {
  let (tx, rx) = mpsc::unbounded_channel();
  let (ready_tx, ready_rx) = std::sync::mpsc::channel();
  std::thread::Builder::new()
    .name(name.to_owned())
    .spawn(move || {
      // A LocalRuntime rather than a current-thread runtime plus LocalSet:
      // with a LocalSet, all local tasks count as one task to the scheduler,
      // which then polls the I/O driver too rarely under load (tokio issue
      // #6739). It is !Send, so it is built here, on its own thread.
      let started = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build_local(LocalOptions::default())
        .and_then(|runtime| Ok((runtime, CpuWatchdog::start_for_current_thread()?)));
      match started {
        Ok((runtime, watchdog)) => {
          let _ = ready_tx.send(Ok(()));
          // Built inside the runtime: the pool starts filling with spawn_local.
          runtime.block_on(async move { Executor::new(Rc::new(watchdog), options).run(rx).await });
        }
        Err(err) => {
          let _ = ready_tx.send(Err(err));
        }
      }
    })?;
  ready_rx
    .recv()
    .map_err(|_| std::io::Error::other("the executor thread died while starting"))??;
  Ok(ExecutorHandle { tx })
}
