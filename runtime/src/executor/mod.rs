//! Executor threads. Each owns a single-threaded tokio runtime and the
//! isolates of the workers pinned to it, and runs as an actor: a message
//! enum, a `select!` loop that never blocks, and a oneshot reply per message.
//!
//! - `handle`: [`ExecutorHandle`], the messages it sends, options, stats,
//!   and starting the thread.
//! - this module: the actor itself, and the life of each isolate it drives.

mod handle;

use handle::Message;
pub use handle::{
  DispatchError, ExecutorHandle, ExecutorOptions, ExecutorStats, spawn_executor,
  spawn_executor_with,
};

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::future::{Future, poll_fn};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::ext::cache::{CacheScope, ResponseCache};
use crate::ext::serve::{
  AnswerTracker, Outbox, Reply, RoutedRequest, ServeRequest, WorkerResponse,
};
use crate::ext::worker::{LogSink, WorkerLog};
use crate::limits::{CpuWatchdog, Termination};
use crate::pool::IsolatePool;
use crate::residency::{ResidencyPolicy, Usage, pick_evictions};
use crate::worker::{Stopped, WorkerError, WorkerIsolate, WorkerVersion, start_worker};

/// How long after a worker's isolate failed to start its requests get 503
/// at once, rather than a new attempt each.
const START_RETRY_AFTER: Duration = Duration::from_secs(5);

/// How often an executor looks for isolates to evict.
const EVICTION_TICK: Duration = Duration::from_secs(1);

/// How long a replaced isolate may keep running to finish its in-flight
/// requests and `waitUntil` work before it is dropped regardless.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Limit counts, shared by the tasks that see the limits broken.
#[derive(Default)]
pub(crate) struct LimitCounts {
  cpu: Cell<u64>,
  memory: Cell<u64>,
  wall: Cell<u64>,
  overloaded: Cell<u64>,
}

impl LimitCounts {
  pub(crate) fn count(&self, why: Termination) {
    let counter = match why {
      Termination::CpuLimit => &self.cpu,
      Termination::MemoryLimit => &self.memory,
      Termination::WallLimit => &self.wall,
      Termination::Overloaded => &self.overloaded,
    };
    counter.set(counter.get() + 1);
  }
}

/// A started isolate, reported back to the loop to be swapped in.
struct Started {
  worker: String,
  live: LiveWorker,
  reply: oneshot::Sender<Result<(), WorkerError>>,
}

/// The executor's hold on a running isolate. Dropping it retires the
/// isolate: no new requests reach it and it drains.
struct LiveWorker {
  /// Installs are numbered, so that of two overlapping installs (quick
  /// successive edits) the later one wins even if it starts first.
  generation: u64,
  version: WorkerVersion,
  requests: mpsc::UnboundedSender<RoutedRequest>,
  usage: Rc<Usage>,
  /// Given to each request's reply; counts it out of `usage` when answered.
  tracker: Rc<InflightTracker>,
  /// When its isolate last failed to start (its top level threw or hung).
  start_failed: Rc<Cell<Option<Instant>>>,
  /// Requests waiting for an in-flight slot (see `WorkerLimits::max_inflight`).
  waiting: VecDeque<ServeRequest>,
  _retire: oneshot::Sender<()>,
}

/// The two ends of a new isolate's links to the executor.
struct IsolateLinks {
  requests: mpsc::UnboundedReceiver<RoutedRequest>,
  retired: oneshot::Receiver<()>,
}

impl LiveWorker {
  /// A live-worker entry and the links its isolate-to-be will use.
  fn new(
    worker: &str,
    generation: u64,
    version: WorkerVersion,
    released: mpsc::UnboundedSender<Rc<str>>,
  ) -> (Self, IsolateLinks) {
    let (requests, requests_rx) = mpsc::unbounded_channel();
    let (retire, retired) = oneshot::channel();
    let usage = Rc::new(Usage::default());
    let tracker = Rc::new(InflightTracker {
      usage: usage.clone(),
      worker: worker.into(),
      released,
    });
    let live = LiveWorker {
      generation,
      version,
      requests,
      usage,
      tracker,
      start_failed: Rc::default(),
      waiting: VecDeque::new(),
      _retire: retire,
    };
    (
      live,
      IsolateLinks {
        requests: requests_rx,
        retired,
      },
    )
  }
}

struct Executor {
  workers: HashMap<String, LiveWorker>,
  watchdog: Rc<CpuWatchdog>,
  pool: Rc<IsolatePool>,
  started_tx: mpsc::UnboundedSender<Started>,
  started_rx: mpsc::UnboundedReceiver<Started>,
  /// Numbers installs and removals, in the order they arrive.
  installs: u64,
  /// When each removed worker was removed, so that an install already under
  /// way at that moment does not bring it back.
  removed: HashMap<String, u64>,
  /// Evicted workers, with the generation and version they come back as.
  dormant: HashMap<String, (u64, WorkerVersion)>,
  residency: ResidencyPolicy,
  response_cache: ResponseCache,
  log_sink: Option<Arc<dyn LogSink>>,
  evictions: u64,
  limits_broken: Rc<LimitCounts>,
  /// Names of workers one of whose requests has just been answered while
  /// others waited.
  released_tx: mpsc::UnboundedSender<Rc<str>>,
  released_rx: mpsc::UnboundedReceiver<Rc<str>>,
  /// Responses of this thread's isolates, sent by a flusher task.
  outbox: Rc<Outbox>,
  /// Requests a stopped isolate never started, to be routed again.
  requeue_tx: mpsc::UnboundedSender<(Rc<str>, ServeRequest)>,
  requeue_rx: mpsc::UnboundedReceiver<(Rc<str>, ServeRequest)>,
}

impl Executor {
  fn new(watchdog: Rc<CpuWatchdog>, options: ExecutorOptions) -> Self {
    let (started_tx, started_rx) = mpsc::unbounded_channel();
    let (released_tx, released_rx) = mpsc::unbounded_channel();
    let (requeue_tx, requeue_rx) = mpsc::unbounded_channel();
    Self {
      workers: HashMap::new(),
      watchdog,
      pool: IsolatePool::start(options.pool_size),
      started_tx,
      started_rx,
      installs: 0,
      removed: HashMap::new(),
      dormant: HashMap::new(),
      residency: options.residency,
      response_cache: options.response_cache,
      log_sink: options.log_sink,
      evictions: 0,
      limits_broken: Rc::default(),
      released_tx,
      released_rx,
      outbox: Rc::default(),
      requeue_tx,
      requeue_rx,
    }
  }

  async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Message>) {
    tokio::task::spawn_local(self.outbox.clone().run_flusher());
    let mut eviction = tokio::time::interval(EVICTION_TICK);
    eviction.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
      tokio::select! {
        message = rx.recv() => match message {
          Some(Message::Spawn(job)) => {
            tokio::task::spawn_local(job());
          }
          Some(Message::Install { worker, version, lazy: false, reply }) => {
            self.install(worker, version, reply)
          }
          Some(Message::Install { worker, version, lazy: true, reply }) => {
            self.stage(worker, version, reply)
          }
          Some(Message::Request { worker, serve }) => self.route(&worker, serve),
          Some(Message::Warm { worker }) => self.warm(&worker),
          Some(Message::Remove { worker, reply }) => {
            self.installs += 1;
            self.removed.insert(worker.clone(), self.installs);
            let was_dormant = self.dormant.remove(&worker).is_some();
            let _ = reply.send(self.workers.remove(&worker).is_some() || was_dormant);
          }
          Some(Message::Stats { reply }) => {
            let _ = reply.send(ExecutorStats {
              resident: self.workers.len(),
              dormant: self.dormant.len(),
              pooled: self.pool.len(),
              evictions: self.evictions,
              warm_starts: self.pool.warm_starts.get(),
              cold_starts: self.pool.cold_starts.get(),
              cpu_limit: self.limits_broken.cpu.get(),
              memory_limit: self.limits_broken.memory.get(),
              wall_limit: self.limits_broken.wall.get(),
              overloaded: self.limits_broken.overloaded.get(),
              requests_cpu: self.watchdog.requests_cpu(),
            });
          }
          None => break,
        },
        Some(started) = self.started_rx.recv() => self.swap_in(started),
        Some(worker) = self.released_rx.recv() => self.release(&worker),
        Some((worker, serve)) = self.requeue_rx.recv() => self.route(&worker, serve),
        _ = eviction.tick() => self.evict(),
      }
    }
  }

  /// Starts an isolate for `version`; it replaces the live one once ready.
  fn install(
    &mut self,
    worker: String,
    version: WorkerVersion,
    reply: oneshot::Sender<Result<(), WorkerError>>,
  ) {
    self.installs += 1;
    let (live, start) = self.prepare(&worker, self.installs, version);
    let started = self.started_tx.clone();
    let counts = self.limits_broken.clone();
    let requeue = Requeue {
      worker: Rc::from(&*worker),
      tx: self.requeue_tx.clone(),
    };
    let span = tracing::info_span!("worker", name = %worker);
    let task = async move {
      match start.await {
        Ok((isolate, retired)) => {
          tokio::task::spawn_local(drive(isolate, retired, counts, requeue).in_current_span());
          let _ = started.send(Started {
            worker,
            live,
            reply,
          });
        }
        Err(err) => {
          let _ = reply.send(Err(err));
        }
      }
    };
    tokio::task::spawn_local(task.instrument(span));
  }

  /// Keeps `version` to start on the worker's next request; a live worker
  /// is replaced by an install instead.
  fn stage(
    &mut self,
    worker: String,
    version: WorkerVersion,
    reply: oneshot::Sender<Result<(), WorkerError>>,
  ) {
    if self.workers.contains_key(&worker) {
      return self.install(worker, version, reply);
    }
    self.installs += 1;
    self.removed.remove(&worker);
    self.dormant.insert(worker, (self.installs, version));
    let _ = reply.send(Ok(()));
  }

  fn swap_in(&mut self, started: Started) {
    let generation = started.live.generation;
    let newer_is_live = self
      .workers
      .get(&started.worker)
      .is_some_and(|live| live.generation > generation);
    let removed_since = self
      .removed
      .get(&started.worker)
      .is_some_and(|&at| at > generation);
    if !newer_is_live && !removed_since {
      self.removed.remove(&started.worker);
      self.dormant.remove(&started.worker);
      // Replacing the entry drops the old LiveWorker, retiring it.
      self.workers.insert(started.worker, started.live);
    }
    let _ = started.reply.send(Ok(()));
  }

  /// Starts a dormant worker's isolate ahead of its first request.
  fn warm(&mut self, worker: &str) {
    if self.workers.contains_key(worker) {
      return;
    }
    if let Some((generation, version)) = self.dormant.remove(worker) {
      self.start_in_place(worker, generation, version);
    }
  }

  fn route(&mut self, worker: &str, serve: ServeRequest) {
    if !self.workers.contains_key(worker) {
      // An evicted worker comes back on its next request.
      let Some((generation, version)) = self.dormant.remove(worker) else {
        let _ = serve.reply.send(WorkerResponse::text(
          http::StatusCode::NOT_FOUND,
          "No worker is deployed under this name.\n",
        ));
        return;
      };
      self.start_in_place(worker, generation, version);
    }
    let Some(live) = self.workers.get_mut(worker) else {
      return;
    };
    let limits = &live.version.limits;
    if live.usage.inflight() >= limits.max_inflight {
      if live.waiting.len() >= limits.max_queued {
        self.limits_broken.count(Termination::Overloaded);
        let _ = serve.reply.send(Termination::Overloaded.response());
      } else {
        live.waiting.push_back(serve);
        live.usage.queued.set(live.waiting.len());
      }
      return;
    }
    self.send_to_isolate(worker, serve);
  }

  /// Lets waiting requests of `worker` through while it has free slots.
  fn release(&mut self, worker: &str) {
    loop {
      let Some(live) = self.workers.get_mut(worker) else {
        return;
      };
      if live.usage.inflight() >= live.version.limits.max_inflight {
        return;
      }
      let Some(serve) = live.waiting.pop_front() else {
        return;
      };
      live.usage.queued.set(live.waiting.len());
      self.send_to_isolate(worker, serve);
    }
  }

  /// Hands a request to the worker's isolate, under its wall-clock limit
  /// (which the isolate's `WallClock` enforces). It counts as in flight
  /// until its response head goes out or its reply is dropped.
  fn send_to_isolate(&mut self, worker: &str, serve: ServeRequest) {
    let Some(live) = self.workers.get(worker) else {
      return;
    };
    if live.requests.is_closed() {
      if live
        .start_failed
        .get()
        .is_some_and(|at| at.elapsed() < START_RETRY_AFTER)
      {
        // Its top level failed moments ago: running it again for every
        // request would only repeat the failure and its log line.
        let _ = serve.reply.send(WorkerResponse::text(
          http::StatusCode::SERVICE_UNAVAILABLE,
          "The worker failed to start.\n",
        ));
        return;
      }
      // The isolate stopped (a limit, or a failed event loop), or its start
      // failed a while ago. The request waits for a fresh isolate of the
      // same version, started now.
      let Some(dead) = self.workers.remove(worker) else {
        return;
      };
      self.start_in_place(worker, dead.generation, dead.version);
    }
    let Some(live) = self.workers.get(worker) else {
      return;
    };
    live.usage.begin();
    let routed = RoutedRequest {
      request: serve.request,
      reply: Reply::new(
        serve.reply,
        Some(live.tracker.clone()),
        Some(self.outbox.clone()),
      ),
      deadline: Instant::now() + live.version.limits.wall_per_request,
    };
    if let Err(mpsc::error::SendError(routed)) = live.requests.send(routed) {
      // Not reached: the channel was open just above, on this thread.
      routed.reply.send(WorkerResponse::text(
        http::StatusCode::SERVICE_UNAVAILABLE,
        "The worker is unavailable.\n",
      ));
    }
  }

  /// A live-worker entry for `version`, and the start of its isolate, for
  /// the caller to run as a local task.
  fn prepare(
    &self,
    worker: &str,
    generation: u64,
    version: WorkerVersion,
  ) -> (
    LiveWorker,
    impl Future<Output = Result<(WorkerIsolate, oneshot::Receiver<()>), WorkerError>> + 'static,
  ) {
    let released = self.released_tx.clone();
    let (live, links) = LiveWorker::new(worker, generation, version.clone(), released);
    let (watchdog, pool, counts) = (
      self.watchdog.clone(),
      self.pool.clone(),
      self.limits_broken.clone(),
    );
    let cache = CacheScope {
      store: self.response_cache.clone(),
      worker: Arc::from(worker),
    };
    let log = self.log_sink.clone().map(|sink| WorkerLog {
      worker: cache.worker.clone(),
      sink,
    });
    let start = async move {
      start_within_wall_limit(&version, links, watchdog, &pool, counts, cache, log).await
    };
    (live, start)
  }

  /// Starts an isolate for `version` and makes it the live entry at once:
  /// requests queue on it while the isolate starts. For a worker whose
  /// isolate stopped or was evicted.
  fn start_in_place(
    &mut self,
    worker: &str,
    generation: u64,
    version: WorkerVersion,
  ) -> &LiveWorker {
    tracing::debug!(worker, "starting an isolate for the worker");
    let (live, start) = self.prepare(worker, generation, version);
    let counts = self.limits_broken.clone();
    let requeue = Requeue {
      worker: Rc::from(worker),
      tx: self.requeue_tx.clone(),
    };
    let start_failed = live.start_failed.clone();
    let span = tracing::info_span!("worker", name = %worker);
    let task = async move {
      match start.await {
        Ok((isolate, retired)) => drive(isolate, retired, counts, requeue).await,
        // Requests queued meanwhile are dropped with the receiver, and get
        // 503 from the edge.
        Err(err) => {
          tracing::error!("the isolate failed to start: {err}");
          start_failed.set(Some(Instant::now()));
        }
      }
    };
    tokio::task::spawn_local(task.instrument(span));
    self.workers.insert(worker.to_owned(), live);
    &self.workers[worker]
  }

  /// Evicts idle isolates the residency policy no longer keeps; their
  /// versions wait in `dormant`.
  fn evict(&mut self) {
    let resident = self
      .workers
      .iter()
      .map(|(name, live)| (name.as_str(), &*live.usage));
    let chosen: Vec<String> = pick_evictions(resident, &self.residency, Instant::now())
      .into_iter()
      .map(str::to_owned)
      .collect();
    for name in chosen {
      if let Some(live) = self.workers.remove(&name) {
        tracing::debug!(worker = %name, "evicting the idle isolate");
        self.evictions += 1;
        // Dropping the entry retires the isolate.
        self.dormant.insert(name, (live.generation, live.version));
      }
    }
  }
}

/// Counts a worker's requests in flight as they are answered, and tells
/// the executor when one that others wait behind is done.
struct InflightTracker {
  usage: Rc<Usage>,
  worker: Rc<str>,
  released: mpsc::UnboundedSender<Rc<str>>,
}

impl AnswerTracker for InflightTracker {
  fn answered(&self) {
    self.usage.end();
    if self.usage.queued.get() > 0 {
      let _ = self.released.send(self.worker.clone());
    }
  }
}

/// Starts `version`'s isolate, giving up once its wall-clock limit has
/// passed (a top level awaiting forever): requests queued meanwhile are
/// dropped and get 503 from the edge.
async fn start_within_wall_limit(
  version: &WorkerVersion,
  links: IsolateLinks,
  watchdog: Rc<CpuWatchdog>,
  pool: &Rc<IsolatePool>,
  counts: Rc<LimitCounts>,
  cache: CacheScope,
  log: Option<WorkerLog>,
) -> Result<(WorkerIsolate, oneshot::Receiver<()>), WorkerError> {
  let limit = version.limits.wall_per_request;
  let IsolateLinks { requests, retired } = links;
  let start = async {
    let isolate = start_worker(version, requests, watchdog, pool, counts, cache, log).await?;
    Ok((isolate, retired))
  };
  tokio::time::timeout(limit, start)
    .await
    .unwrap_or(Err(WorkerError::Terminated(Termination::WallLimit)))
}

/// Runs an isolate's event loop until it has nothing left to do after being
/// retired, breaks a limit, fails, or outlives the drain deadline.
async fn drive(
  mut isolate: WorkerIsolate,
  retired: oneshot::Receiver<()>,
  counts: Rc<LimitCounts>,
  requeue: Requeue,
) {
  let event_loop = poll_fn(|cx| isolate.poll(cx));
  let deadline = async {
    let _ = retired.await;
    tokio::time::sleep(DRAIN_DEADLINE).await;
  };
  let stopped = tokio::select! {
    stopped = event_loop => stopped,
    () = deadline => {
      tracing::warn!("isolate still busy {DRAIN_DEADLINE:?} after it was replaced; dropping it");
      Stopped::Finished
    }
  };
  let queued = match stopped {
    Stopped::Finished => {
      tracing::debug!("isolate finished");
      Vec::new()
    }
    Stopped::Terminated(why) => {
      counts.count(why);
      tracing::warn!(
        "isolate terminated: {}; a fresh one serves the next request",
        why.code()
      );
      isolate.answer_inflight(why)
    }
    Stopped::Failed(err) => {
      tracing::error!("worker isolate failed: {}", err.0);
      isolate.take_queued()
    }
  };
  drop(isolate);
  // Requests that never reached JS go to a fresh isolate.
  for routed in queued {
    if let Some(reply) = routed.reply.into_sender() {
      let serve = ServeRequest {
        request: routed.request,
        reply,
      };
      let _ = requeue.tx.send((requeue.worker.clone(), serve));
    }
  }
}

/// Where a stopped isolate sends the requests it never started, to be
/// routed again.
#[derive(Clone)]
struct Requeue {
  worker: Rc<str>,
  tx: mpsc::UnboundedSender<(Rc<str>, ServeRequest)>,
}
