//! Starting a worker: a fresh isolate from the snapshot, the bundle's modules
//! evaluated in it, and its request loop started.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use deno_core::error::{CoreError, JsError};
use deno_core::{OpState, PollEventLoopOptions, ResourceId, RuntimeOptions, v8};
use deno_error::JsErrorBox;
use tokio::sync::mpsc;

use crate::bundle::{BundleError, WorkerBundle};
use crate::executor::LimitCounts;
use crate::ext::assets::{AssetFetcher, AssetsBinding};
use crate::ext::cache::CacheScope;
use crate::ext::fetch::OutboundConfig;
use crate::ext::kv::{KvBindings, KvNamespace};
use crate::ext::serve::RequestSummary;
use crate::ext::serve::{
  CpuLedger, RoutedRequest, accept_batch, answer_all, awaiting_answer, expire,
};
use crate::ext::service::ServiceBindings;
use crate::ext::worker::{WorkerLog, WorkerRequestLine};
use crate::isolate::IsolateCell;
use crate::limits::{CpuWatchdog, Termination, WatchedIsolate, WorkerLimits};
use crate::pool::{BlankIsolate, IsolatePool};

static SNAPSHOT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/OUTPOST_SNAPSHOT.bin"));

/// The name of the global the snapshot leaves for the host; see
/// `js-api/src/worker/99_main.js`.
const BOOTSTRAP_GLOBAL: &str = "__outpostBootstrap";

/// Where the snapshot leaves the per-isolate set-up it cannot keep itself
/// (deno_core holds the wasm streaming handler outside the V8 heap).
const INIT_GLOBAL: &str = "__outpostInitIsolate";

/// The bindings a worker receives as `env`.
#[derive(Debug, Clone, Default)]
pub struct WorkerEnv {
  /// Plain string vars, visible as `env.NAME`.
  pub vars: BTreeMap<String, String>,
  /// KV namespaces by binding name, visible as `env.NAME`.
  pub kv: BTreeMap<String, KvNamespace>,
  /// `nodejs_compat`: `Buffer` and `process` are globals, as in Workers.
  pub nodejs_compat: bool,
  /// The static assets binding: its name in `env` and what serves it.
  pub assets: Option<(String, Arc<dyn AssetFetcher>)>,
  /// Service bindings (`[[services]]`) and dispatch namespace bindings
  /// (`[[dispatch_namespaces]]`): their names in `env` and what runs them.
  pub services: Option<ServiceBindings>,
}

impl WorkerEnv {
  /// What JS's bootstrap builds `env` from: the vars, and each KV
  /// binding's namespace id.
  fn to_json(&self) -> Result<String, serde_json::Error> {
    let kv: BTreeMap<&str, &str> = self
      .kv
      .iter()
      .map(|(binding, namespace)| (binding.as_str(), namespace.id.as_str()))
      .collect();
    serde_json::to_string(&serde_json::json!({
      "vars": self.vars,
      "kv": kv,
      "assets": self.assets.as_ref().map(|(binding, _)| binding),
      "services": self.services.as_ref().map_or(&[][..], |s| &s.names[..]),
      "namespaces": self.services.as_ref().map_or(&[][..], |s| &s.namespaces[..]),
      "nodejsCompat": self.nodejs_compat,
    }))
  }

  fn kv_bindings(&self) -> KvBindings {
    KvBindings(
      self
        .kv
        .values()
        .map(|namespace| (namespace.id.clone(), namespace.backend.clone()))
        .collect(),
    )
  }
}

/// One deployable version of a worker: its code and its bindings.
#[derive(Debug, Clone)]
pub struct WorkerVersion {
  /// The worker's modules.
  pub bundle: Arc<WorkerBundle>,
  /// Its bindings.
  pub env: Arc<WorkerEnv>,
  /// The limits it runs under.
  pub limits: WorkerLimits,
}

/// Why a worker could not be started.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
  /// The bundle could not be built.
  #[error(transparent)]
  Bundle(#[from] BundleError),
  /// V8 refused the code, or the top-level code threw. The message carries
  /// the JS error and its stack (file:line:col).
  #[error("{0}")]
  Script(String),
  /// The snapshot does not hold the bootstrap entry point.
  #[error("the startup snapshot is missing {BOOTSTRAP_GLOBAL}")]
  Snapshot,
  /// The executor that should run the worker has stopped.
  #[error("the executor thread has stopped")]
  ExecutorGone,
  /// Starting the worker broke one of its limits (a runaway top level).
  #[error("the worker's top-level code was stopped: {}", .0.code())]
  Terminated(Termination),
}

impl From<CoreError> for WorkerError {
  fn from(err: CoreError) -> Self {
    // CoreError's own Display is empty; its kind carries the JS message
    // and stack.
    WorkerError::Script(err.0.to_string())
  }
}

/// Flags Outpost gives V8 before any of its own.
///
/// - `--single-threaded-gc`: executors are one thread per core, so V8's
///   parallel GC helper threads would only steal time from other executors
///   and add context switches; measured with compare.py, GC on the
///   isolate's own thread costs less CPU per request.
/// - `--no-concurrent-osr`: with concurrent on-stack replacement, an
///   optimised allocation loop (`while (true) a.push(new Array(n))`) ignores
///   `terminate_execution`, so it escapes the memory limit and grows until
///   V8 aborts the process. Compiling OSR code on the isolate's own thread
///   keeps the loop stoppable (the `limits/hog` fixture covers it).
pub const DEFAULT_V8_FLAGS: [&str; 2] = ["--single-threaded-gc", "--no-concurrent-osr"];

/// Passes `flags` to V8, after [`DEFAULT_V8_FLAGS`] (a later flag wins).
/// Call before the first isolate is created; returns the flags V8 did not
/// recognise.
pub fn set_v8_flags(flags: &[String]) -> Vec<String> {
  apply_default_v8_flags();
  pass_v8_flags(flags.iter().cloned())
}

/// Passes [`DEFAULT_V8_FLAGS`] to V8 once per process. Every isolate is
/// created after this, so an embedder that never calls [`set_v8_flags`]
/// still gets them.
pub(crate) fn apply_default_v8_flags() {
  static DEFAULTS: Once = Once::new();
  DEFAULTS.call_once(|| {
    pass_v8_flags(DEFAULT_V8_FLAGS.iter().map(|f| (*f).to_owned()));
  });
}

fn pass_v8_flags(flags: impl Iterator<Item = String>) -> Vec<String> {
  // V8 treats the first argument as the program name.
  let args = std::iter::once("outpost".to_owned()).chain(flags).collect();
  deno_core::v8_set_flags(args).into_iter().skip(1).collect()
}

/// Runtime options for an isolate started from the snapshot.
pub(crate) fn snapshot_options(
  module_loader: Option<Rc<dyn deno_core::ModuleLoader>>,
  heap_bytes: Option<usize>,
) -> RuntimeOptions {
  RuntimeOptions {
    startup_snapshot: Some(SNAPSHOT),
    extensions: crate::extensions::all(),
    module_loader,
    // ArrayBuffer contents, outside the heap, get a budget of the same size.
    create_params: heap_bytes.map(|max| {
      v8::CreateParams::default()
        .heap_limits(0, max)
        .array_buffer_allocator(crate::array_buffers::allocator(max))
    }),
    ..Default::default()
  }
}

/// A blank isolate from the startup snapshot, with the Web API globals in
/// place and no worker code loaded.
pub fn blank_isolate() -> Result<IsolateCell, WorkerError> {
  Ok(IsolateCell::new(snapshot_options(None, None))?)
}

/// Globals that hold deno_core's internals (ops included). They are needed
/// while an isolate starts and must be gone before worker code runs.
const HOST_GLOBALS: [&str; 2] = ["Deno", "__bootstrap"];

/// Runs the snapshot's per-isolate set-up, takes the bootstrap function out
/// of the global scope and removes the host internals, so worker code can
/// never reach any of them.
pub(crate) fn take_bootstrap(
  cell: &mut IsolateCell,
) -> Result<v8::Global<v8::Function>, WorkerError> {
  cell.with(|runtime| {
    // A blocking wait would stall every isolate on the executor thread,
    // using no CPU for the watchdog to see: `Atomics.wait` throws instead,
    // as in Workers and browsers' main threads.
    runtime.v8_isolate().set_allow_atomics_wait(false);
    deno_core::scope!(scope, runtime);
    let global = scope.get_current_context().global(scope);
    let init = global_function(scope, global, INIT_GLOBAL)?;
    let undefined = v8::undefined(scope).into();
    init
      .call(scope, undefined, &[])
      .ok_or(WorkerError::Snapshot)?;
    let function = global_function(scope, global, BOOTSTRAP_GLOBAL)?;
    for name in [BOOTSTRAP_GLOBAL, INIT_GLOBAL]
      .into_iter()
      .chain(HOST_GLOBALS)
    {
      let key = v8::String::new(scope, name).ok_or(WorkerError::Snapshot)?;
      global.delete(scope, key.into());
    }
    Ok(v8::Global::new(scope, function))
  })
}

/// Memory the isolate holds outside V8's heap: ArrayBuffer contents and
/// WebAssembly memories. V8 keeps the count; adjusting it by zero reads it.
fn external_memory(runtime: &mut deno_core::JsRuntime) -> i64 {
  runtime
    .v8_isolate()
    .adjust_amount_of_external_allocated_memory(0)
}

/// The function the snapshot left in global `name`.
fn global_function<'s>(
  scope: &mut v8::PinScope<'s, '_>,
  global: v8::Local<'s, v8::Object>,
  name: &str,
) -> Result<v8::Local<'s, v8::Function>, WorkerError> {
  let key = v8::String::new(scope, name).ok_or(WorkerError::Snapshot)?;
  let value = global.get(scope, key.into()).ok_or(WorkerError::Snapshot)?;
  v8::Local::<v8::Function>::try_from(value).map_err(|_| WorkerError::Snapshot)
}

/// Stretches of JS shorter than this, in wall time, are charged their wall
/// time rather than their CPU time; see [`Watch::stretch`].
const SHORT_STRETCH: Duration = Duration::from_micros(500);

/// What a worker's isolate is watched by: the executor thread's CPU
/// watchdog, and the flag its near-heap-limit callback raises.
struct Watch {
  watchdog: Rc<CpuWatchdog>,
  watched: Arc<WatchedIsolate>,
  cpu_budget: Duration,
  /// What each request in flight has used of `cpu_budget`.
  ledger: CpuLedger,
  /// The most memory outside the V8 heap (ArrayBuffer contents, WebAssembly
  /// memories) the isolate may hold: its heap limit again.
  external_limit: i64,
  /// Where tailed requests' summaries go.
  log: Option<WorkerLog>,
}

impl Watch {
  /// Counts a finished request's CPU time, and hands its summary (if its
  /// worker is tailed) to the log sink.
  fn finished(&self, cpu: Duration, summary: Option<RequestSummary>) {
    self.watchdog.record_request(cpu);
    if let (Some(log), Some(summary)) = (&self.log, summary) {
      log.sink.request(WorkerRequestLine {
        worker: log.worker.clone(),
        method: summary.method,
        url: summary.url,
        status: summary.status,
        outcome: summary.outcome,
        cpu,
        wall: summary.wall,
        ray: summary.ray,
      });
    }
  }

  /// `MemoryLimit` if the isolate holds more than its limit outside the
  /// heap (WebAssembly memories are not bounded while they are made).
  fn memory_exceeded(&self, external: i64) -> Option<Termination> {
    (external > self.external_limit).then_some(Termination::MemoryLimit)
  }

  /// Runs `f` as one watched stretch of JS, charges its CPU time to the
  /// requests in flight, and reports a limit it broke: the watchdog stops
  /// the stretch once the request with the least budget left has used it.
  /// `arriving` is the lowest budget of requests the stretch starts, which
  /// the ledger does not hold yet.
  fn stretch<R>(
    &self,
    arriving: Option<Duration>,
    f: impl FnOnce() -> R,
  ) -> (R, Option<Termination>) {
    let budget = self.ledger.least_left(self.cpu_budget);
    let budget = arriving.map_or(budget, |arriving| arriving.min(budget));
    let started = self.watchdog.cpu_clock();
    let started_at = Instant::now();
    self.watchdog.begin(&self.watched, budget);
    let result = f();
    self.watchdog.end();
    let wall = started_at.elapsed();
    // A short stretch is charged its wall time, which bounds its CPU time
    // from above; a long one, the thread's CPU clock since it began. A
    // stretch starts for nearly every request on a node spread over many
    // workers, and each read of that clock is a system call, so the start
    // is an estimate (`CpuWatchdog::cpu_clock`) and the end is read only
    // when needed.
    let used = if wall < SHORT_STRETCH {
      wall
    } else {
      self.watchdog.read_cpu_clock().saturating_sub(started)
    };
    let over_budget = self.ledger.charge(used, self.cpu_budget, |cpu, summary| {
      self.finished(cpu, summary)
    });
    let broken = if self.watched.cpu_exceeded() || over_budget {
      Some(Termination::CpuLimit)
    } else if self.watched.out_of_memory() {
      Some(Termination::MemoryLimit)
    } else {
      None
    };
    (result, broken)
  }

  /// Drives `future` to completion, each poll a watched stretch.
  async fn run<F: Future + Unpin>(&self, mut future: F) -> Result<F::Output, Termination> {
    poll_fn(
      |cx| match self.stretch(None, || Pin::new(&mut future).poll(cx)) {
        (_, Some(broken)) => Poll::Ready(Err(broken)),
        (poll, None) => poll.map(Ok),
      },
    )
    .await
  }
}

/// How a worker's isolate stopped.
#[derive(Debug)]
pub(crate) enum Stopped {
  /// Retired and idle: nothing left to do.
  Finished,
  /// A limit was broken and the isolate terminated.
  Terminated(Termination),
  /// The event loop failed.
  Failed(CoreError),
}

/// CPU time a worker's top level may use, as Workers' startup limit.
const STARTUP_CPU_BUDGET: std::time::Duration = std::time::Duration::from_secs(1);

/// Most requests handed to JS in one call, so one isolate's burst cannot
/// starve the executor's other isolates.
const MAX_BATCH: usize = 64;

/// A worker's isolate, running under its limits.
pub(crate) struct WorkerIsolate {
  cell: IsolateCell,
  watch: Watch,
  /// Requests routed to this worker; closed when the worker is retired.
  requests: mpsc::UnboundedReceiver<RoutedRequest>,
  /// Enforces the wall-clock limit on requests JS holds.
  wall: WallClock,
  op_state: Rc<RefCell<OpState>>,
  /// JS's entry point for a batch of requests (see `serveRequests` in
  /// `js-api/src/serve/20_dispatch.js`).
  dispatch: v8::Global<v8::Function>,
  /// The isolate's context, kept here because `JsRuntime::main_context`
  /// hands out a new global handle on every call.
  context: v8::Global<v8::Context>,
}

impl WorkerIsolate {
  /// Hands the requests that have arrived to JS and runs one turn of the
  /// event loop, together one watched stretch of JS. Finished once the
  /// worker is retired and its isolate has nothing left to do.
  ///
  /// The host calls into JS directly rather than JS awaiting an op for the
  /// next request: in an isolate that sees few requests, the promise
  /// machinery of an async op costs more than the handler itself.
  pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Stopped> {
    let mut batch = Vec::new();
    let mut retired = false;
    while batch.len() < MAX_BATCH {
      match self.requests.poll_recv(cx) {
        Poll::Ready(Some(serve)) => batch.push(serve),
        Poll::Ready(None) => {
          retired = true;
          break;
        }
        Poll::Pending => break,
      }
    }
    if batch.len() == MAX_BATCH {
      // The rest go in the next batch; nothing else would wake us for them.
      cx.waker().wake_by_ref();
    }
    // A caller's CPU limit on a request binds from its first stretch.
    let arriving = batch.iter().filter_map(|r| r.request.limits.cpu).min();
    let (cell, dispatch, context) = (&mut self.cell, &self.dispatch, &self.context);
    let deadlines = &mut self.wall.deadlines;
    let mut external = 0;
    let turn = || {
      cell.with(|runtime| {
        if !batch.is_empty() {
          dispatch_batch(runtime, context, dispatch, batch, deadlines)?;
        }
        let polled = runtime.poll_event_loop(cx, PollEventLoopOptions::default());
        external = external_memory(runtime);
        polled
      })
    };
    let outcome = match self.watch.stretch(arriving, turn) {
      (polled, None) => (polled, self.watch.memory_exceeded(external)),
      broken => broken,
    };
    self.wall.enforce(&mut self.op_state.borrow_mut(), cx);
    match outcome {
      (_, Some(broken)) => Poll::Ready(Stopped::Terminated(broken)),
      (Poll::Ready(Err(err)), None) => Poll::Ready(Stopped::Failed(err)),
      (Poll::Ready(Ok(())), None) if retired => Poll::Ready(Stopped::Finished),
      // Idle, or busy: either way a request or the event loop wakes us.
      _ => Poll::Pending,
    }
  }

  /// Answers every request JS holds with `why`'s response, for use before
  /// the isolate is dropped after it stopped; returns the requests not yet
  /// handed to JS, which have not started and can go to a fresh isolate.
  pub(crate) fn answer_inflight(&mut self, why: Termination) -> Vec<RoutedRequest> {
    answer_all(&mut self.op_state.borrow_mut(), why.code(), || {
      why.response()
    });
    // Count the requests just cut short with what they had used.
    let watch = &self.watch;
    watch
      .ledger
      .charge(Duration::ZERO, watch.cpu_budget, |cpu, summary| {
        watch.finished(cpu, summary)
      });
    self.take_queued()
  }

  /// The requests routed here that JS has not been handed yet.
  pub(crate) fn take_queued(&mut self) -> Vec<RoutedRequest> {
    let mut queued = Vec::new();
    while let Ok(routed) = self.requests.try_recv() {
      queued.push(routed);
    }
    queued
  }
}

/// The wall-clock deadlines of the requests an isolate holds, oldest first
/// (a worker's requests all get the same limit, so arrival order is
/// deadline order), and one timer for the oldest.
struct WallClock {
  deadlines: VecDeque<(Instant, ResourceId)>,
  timer: Pin<Box<tokio::time::Sleep>>,
  counts: Rc<LimitCounts>,
}

impl WallClock {
  fn new(counts: Rc<LimitCounts>) -> Self {
    Self {
      deadlines: VecDeque::new(),
      timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
      counts,
    }
  }

  /// Answers 504 `wall-limit` for each request past its deadline without a
  /// response head, forgets the ones already answered, and sets the timer
  /// for the oldest left.
  fn enforce(&mut self, state: &mut OpState, cx: &mut Context<'_>) {
    let now = Instant::now();
    while let Some(&(deadline, rid)) = self.deadlines.front() {
      if awaiting_answer(state, rid) {
        if deadline > now {
          break;
        }
        if expire(state, rid, Termination::WallLimit.response()) {
          self.counts.count(Termination::WallLimit);
        }
      }
      self.deadlines.pop_front();
    }
    if let Some(&(deadline, _)) = self.deadlines.front() {
      self.timer.as_mut().reset(deadline.into());
      // Registers the waker; firing is handled on the next poll.
      let _ = self.timer.as_mut().poll(cx);
    }
  }
}

/// Registers `batch` as in flight and calls JS's dispatch function with it.
/// A stopped (terminated) call is not an error here: the watch reports it.
fn dispatch_batch(
  runtime: &mut deno_core::JsRuntime,
  context: &v8::Global<v8::Context>,
  dispatch: &v8::Global<v8::Function>,
  batch: Vec<RoutedRequest>,
  deadlines: &mut VecDeque<(Instant, ResourceId)>,
) -> Result<(), CoreError> {
  let heads = accept_batch(&mut runtime.op_state().borrow_mut(), batch, deadlines);
  v8::scope!(let scope, runtime.v8_isolate());
  let context = v8::Local::new(scope, context);
  let scope = &mut v8::ContextScope::new(scope, context);
  v8::tc_scope!(let scope, scope);
  let args = heads
    .into_args(scope)
    .map_err(|err| CoreError::from(JsErrorBox::from_err(err)))?;
  let dispatch = v8::Local::new(scope, dispatch);
  let this = v8::undefined(scope).into();
  if dispatch.call(scope, this, &args).is_none()
    && !scope.is_execution_terminating()
    && let Some(exception) = scope.exception()
  {
    return Err(CoreError::from(JsError::from_v8_exception(
      scope, exception,
    )));
  }
  Ok(())
}

/// Calls `function` with the one argument `arg` makes, in the isolate's
/// main context, and returns what it returns, which must be a function:
/// the bootstrap's steps hand each other functions. Synchronous: no turn
/// of the event loop, which a warm start would pay for twice.
fn call_sync(
  runtime: &mut deno_core::JsRuntime,
  function: &v8::Global<v8::Function>,
  arg: impl for<'s, 'i> FnOnce(
    &mut v8::PinScope<'s, 'i>,
  ) -> Result<v8::Local<'s, v8::Value>, WorkerError>,
) -> Result<v8::Global<v8::Function>, WorkerError> {
  let context = runtime.main_context();
  v8::scope!(let scope, runtime.v8_isolate());
  let context = v8::Local::new(scope, context);
  let scope = &mut v8::ContextScope::new(scope, context);
  v8::tc_scope!(let scope, scope);
  let arg = arg(scope)?;
  let function = v8::Local::new(scope, function);
  let this = v8::undefined(scope).into();
  let Some(result) = function.call(scope, this, &[arg]) else {
    let message = match scope.exception() {
      Some(exception) => JsError::from_v8_exception(scope, exception).to_string(),
      None => "the bootstrap was stopped".to_owned(),
    };
    return Err(WorkerError::Script(message));
  };
  v8::Local::<v8::Function>::try_from(result)
    .map(|f| v8::Global::new(scope, f))
    .map_err(|_| WorkerError::Script("the bootstrap returned no function".into()))
}

/// Starts `version` in an isolate from `pool` whose requests arrive on
/// `requests`, with its CPU watched by `watchdog` and its Cache API in
/// `cache`. Returns once the modules have been evaluated and the request
/// loop runs.
pub(crate) async fn start_worker(
  version: &WorkerVersion,
  requests: mpsc::UnboundedReceiver<RoutedRequest>,
  watchdog: Rc<CpuWatchdog>,
  pool: &Rc<IsolatePool>,
  counts: Rc<LimitCounts>,
  cache: CacheScope,
  log: Option<WorkerLog>,
) -> Result<WorkerIsolate, WorkerError> {
  let limits = &version.limits;
  let BlankIsolate {
    mut cell,
    loader,
    bootstrap,
  } = pool.take(limits)?;
  loader.bind(version.bundle.clone());
  let out_of_memory = Arc::new(AtomicBool::new(false));
  let ledger = CpuLedger::default();
  let isolate = cell.with(|runtime| {
    let op_state = runtime.op_state();
    let mut op_state = op_state.borrow_mut();
    op_state.put(ledger.clone());
    op_state.put(cache);
    if let Some(log) = log.clone() {
      op_state.put(log);
    }
    op_state.put(version.env.kv_bindings());
    if let Some((_, fetcher)) = &version.env.assets {
      op_state.put(AssetsBinding(fetcher.clone()));
    }
    if let Some(services) = &version.env.services {
      op_state.put(services.clone());
    }
    op_state.put(crate::ext::node::NodeBundle(version.bundle.clone()));
    op_state.put(OutboundConfig {
      policy: limits.outbound.clone(),
      max_subrequests: limits.max_subrequests,
      timeout: limits.subrequest_timeout,
    });
    drop(op_state);
    let isolate = runtime.v8_isolate().thread_safe_handle();
    let flag = out_of_memory.clone();
    // Terminating from inside this GC callback does not stop the running
    // JS, so only raise the flag: the watchdog thread terminates the stretch
    // within a tick. Meanwhile V8 gets room to go on rather than abort.
    runtime.add_near_heap_limit_callback(move |current, _initial| {
      flag.store(true, Ordering::Release);
      current * 2
    });
    if !limits.allow_code_generation {
      deno_core::scope!(scope, runtime);
      scope
        .get_current_context()
        .set_allow_generation_from_strings(false);
    }
    isolate
  });
  let mut watch = Watch {
    watchdog,
    watched: Arc::new(WatchedIsolate::new(isolate, out_of_memory)),
    // The top level gets Workers' startup budget: bundled libraries (zod,
    // say) can take longer to set up than a request may run.
    cpu_budget: limits.cpu_per_request.max(STARTUP_CPU_BUDGET),
    ledger,
    external_limit: i64::try_from(limits.heap_bytes).unwrap_or(i64::MAX),
    log,
  };

  // `env` first, so the modules' top level can import it from
  // `cloudflare:workers`; the bootstrap hands back what starts the worker.
  let env_json = version
    .env
    .to_json()
    .map_err(|e| WorkerError::Script(e.to_string()))?;
  let start = cell.with(|runtime| {
    call_sync(runtime, &bootstrap, |scope| {
      v8::String::new(scope, &env_json)
        .map(Into::into)
        .ok_or_else(|| WorkerError::Script("the worker's env is too large for a V8 string".into()))
    })
  })?;

  let main = version.bundle.main().clone();
  let module_id = watch
    .run(cell.run(|runtime| runtime.load_main_es_module(&main)))
    .await
    .map_err(WorkerError::Terminated)??;
  let evaluated = cell.run(|runtime| async move {
    let evaluation = runtime.mod_evaluate(module_id);
    runtime
      .with_event_loop_future(evaluation, PollEventLoopOptions::default())
      .await
  });
  watch
    .run(evaluated)
    .await
    .map_err(WorkerError::Terminated)??;
  if let Some(broken) = watch.memory_exceeded(cell.with(external_memory)) {
    return Err(WorkerError::Terminated(broken));
  }

  watch.cpu_budget = limits.cpu_per_request;
  let namespace = cell.with(|runtime| runtime.get_module_namespace(module_id))?;
  let dispatch = cell.with(|runtime| {
    call_sync(runtime, &start, |scope| {
      Ok(v8::Local::new(scope, &namespace).into())
    })
  })?;
  let context = cell.with(|runtime| runtime.main_context());
  let op_state = cell.with(|runtime| runtime.op_state());
  Ok(WorkerIsolate {
    cell,
    watch,
    requests,
    wall: WallClock::new(counts),
    op_state,
    dispatch,
    context,
  })
}
