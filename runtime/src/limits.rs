//! Per-worker limits, and the CPU watchdog that enforces the CPU limit.
//!
//! The watchdog is one thread per executor. The executor publishes each
//! stretch of JS and the CPU budget left for it; every [`TICK`] the watchdog
//! reads the executor thread's CPU clock and terminates the running isolate
//! once the stretch has used that budget, or once the isolate has raised
//! its out-of-memory flag (V8 does not stop JS when asked to from inside
//! its near-heap-limit callback, so that callback leaves it to the
//! watchdog).

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deno_core::v8;
use http::{HeaderValue, StatusCode};

use crate::ext::fetch::OutboundPolicy;
use crate::ext::serve::WorkerResponse;

/// How often the watchdog looks; a runaway stretch of JS runs at most about
/// this much past its budget.
pub const TICK: Duration = Duration::from_millis(5);

/// The limits one worker runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerLimits {
  /// CPU time one uninterrupted stretch of the worker's JS may use.
  pub cpu_per_request: Duration,
  /// The isolate's V8 heap limit.
  pub heap_bytes: usize,
  /// How long a request may take before the client gets 504.
  pub wall_per_request: Duration,
  /// Whether `eval` and `new Function` are allowed.
  pub allow_code_generation: bool,
  /// Requests the isolate may have in flight at once.
  pub max_inflight: usize,
  /// Requests that may wait for a free in-flight slot; past that, 503.
  pub max_queued: usize,
  /// `fetch()` calls one request may make.
  pub max_subrequests: u32,
  /// How long one `fetch()` may wait for its response head.
  pub subrequest_timeout: Duration,
  /// Which addresses `fetch()` may reach.
  pub outbound: Arc<OutboundPolicy>,
}

impl Default for WorkerLimits {
  fn default() -> Self {
    Self {
      cpu_per_request: Duration::from_millis(50),
      heap_bytes: 128 * 1024 * 1024,
      wall_per_request: Duration::from_secs(30),
      allow_code_generation: false,
      max_inflight: 1024,
      max_queued: 1024,
      max_subrequests: 50,
      subrequest_timeout: Duration::from_secs(30),
      outbound: Arc::default(),
    }
  }
}

/// Why the platform stopped a request or an isolate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
  /// A stretch of JS used more CPU than its budget.
  CpuLimit,
  /// The isolate reached its heap limit.
  MemoryLimit,
  /// The request took longer than its wall-clock limit.
  WallLimit,
  /// The worker had as many requests in flight and waiting as it may.
  Overloaded,
}

impl Termination {
  /// The value of the `outpost-error` response header.
  pub fn code(self) -> &'static str {
    match self {
      Termination::CpuLimit => "cpu-limit",
      Termination::MemoryLimit => "memory-limit",
      Termination::WallLimit => "wall-limit",
      Termination::Overloaded => "overloaded",
    }
  }

  /// The response a request cut short for this reason gets.
  pub fn response(self) -> WorkerResponse {
    let (status, message) = match self {
      Termination::CpuLimit => (
        StatusCode::SERVICE_UNAVAILABLE,
        "The worker exceeded its CPU time limit.\n",
      ),
      Termination::MemoryLimit => (
        StatusCode::SERVICE_UNAVAILABLE,
        "The worker exceeded its memory limit.\n",
      ),
      Termination::WallLimit => (
        StatusCode::GATEWAY_TIMEOUT,
        "The worker did not answer in time.\n",
      ),
      Termination::Overloaded => (
        StatusCode::SERVICE_UNAVAILABLE,
        "The worker is busy; try again shortly.\n",
      ),
    };
    let mut response = WorkerResponse::text(status, message);
    response
      .headers
      .insert("outpost-error", HeaderValue::from_static(self.code()));
    response
  }
}

/// Upper bounds of the buckets of the CPU-per-request histogram.
pub const CPU_BUCKETS: [Duration; 10] = [
  Duration::from_micros(100),
  Duration::from_micros(250),
  Duration::from_micros(500),
  Duration::from_millis(1),
  Duration::from_micros(2500),
  Duration::from_millis(5),
  Duration::from_millis(10),
  Duration::from_millis(25),
  Duration::from_millis(50),
  Duration::from_millis(100),
];

/// CPU time per request, as a histogram over [`CPU_BUCKETS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuHistogram {
  /// Requests per bucket (not cumulative); the last counts those above
  /// every bound.
  pub buckets: [u64; CPU_BUCKETS.len() + 1],
  /// Total CPU time of the requests counted.
  pub sum: Duration,
  /// Requests counted.
  pub count: u64,
}

impl CpuHistogram {
  /// Counts one request that used `cpu`.
  pub fn record(&mut self, cpu: Duration) {
    let bucket = CPU_BUCKETS.partition_point(|&bound| bound < cpu);
    self.buckets[bucket] += 1;
    self.sum += cpu;
    self.count += 1;
  }

  /// Adds another histogram's counts to these.
  pub fn add(&mut self, other: &CpuHistogram) {
    for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
      *mine += theirs;
    }
    self.sum += other.sum;
    self.count += other.count;
  }
}

/// CPU time the calling thread has used so far.
pub fn thread_cpu_time() -> Duration {
  let mut ts = libc::timespec {
    tv_sec: 0,
    tv_nsec: 0,
  };
  // SAFETY: `ts` is a valid timespec to write into.
  let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
  if rc != 0 {
    return Duration::ZERO;
  }
  Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The CPU clock of one thread, readable from any thread.
#[derive(Clone, Copy)]
struct ThreadCpuClock(libc::clockid_t);

impl ThreadCpuClock {
  /// The clock of the calling thread.
  fn current() -> std::io::Result<Self> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: pthread_self() is the calling thread, and `clock` is a valid
    // place for the result.
    let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
    if rc != 0 {
      return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(Self(clock))
  }

  /// CPU time the thread has used. `None` if the thread has exited.
  fn now(self) -> Option<Duration> {
    let mut ts = libc::timespec {
      tv_sec: 0,
      tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    let rc = unsafe { libc::clock_gettime(self.0, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
  }
}

/// An isolate as the watchdog sees it, made once per isolate so that
/// starting a stretch allocates nothing.
pub struct WatchedIsolate {
  isolate: v8::IsolateHandle,
  /// Raised by the isolate's near-heap-limit callback.
  out_of_memory: Arc<AtomicBool>,
  /// Set when the watchdog stopped the current stretch for its CPU time.
  cpu_exceeded: AtomicBool,
}

impl WatchedIsolate {
  /// `isolate`, to be stopped also once `out_of_memory` is raised.
  pub fn new(isolate: v8::IsolateHandle, out_of_memory: Arc<AtomicBool>) -> Self {
    Self {
      isolate,
      out_of_memory,
      cpu_exceeded: AtomicBool::new(false),
    }
  }

  /// Whether the watchdog stopped the stretch begun last for its CPU time.
  pub fn cpu_exceeded(&self) -> bool {
    self.cpu_exceeded.load(Ordering::Acquire)
  }

  /// Whether the isolate has reached its heap limit.
  pub fn out_of_memory(&self) -> bool {
    self.out_of_memory.load(Ordering::Acquire)
  }
}

/// The stretch of JS the executor is running now.
struct Running {
  watched: Arc<WatchedIsolate>,
  cpu_budget: Duration,
}

/// What the executor publishes for the watchdog.
struct Shared {
  /// Increments at the start of every watched stretch; odd while running.
  stretch: AtomicU64,
  /// The running stretch.
  running: Mutex<Option<Running>>,
  /// Set when the executor thread stops, so the watchdog thread ends too.
  closed: AtomicBool,
}

/// How old the executor's last CPU-clock reading may be before
/// [`CpuWatchdog::cpu_clock`] reads the clock again rather than estimating.
pub const CPU_CLOCK_REFRESH: Duration = Duration::from_micros(500);

/// One executor thread's CPU watchdog, and its tally of CPU per request.
pub struct CpuWatchdog {
  shared: Arc<Shared>,
  requests: RefCell<CpuHistogram>,
  /// The executor thread's CPU clock as last read, and when it was read.
  last_reading: Cell<(Instant, Duration)>,
}

impl CpuWatchdog {
  /// Starts a watchdog for the calling (executor) thread.
  pub fn start_for_current_thread() -> std::io::Result<Self> {
    let clock = ThreadCpuClock::current()?;
    let shared = Arc::new(Shared {
      stretch: AtomicU64::new(0),
      running: Mutex::new(None),
      closed: AtomicBool::new(false),
    });
    let watched = shared.clone();
    std::thread::Builder::new()
      .name("outpost-watchdog".into())
      .spawn(move || watch(clock, &watched))?;
    Ok(Self {
      shared,
      requests: RefCell::default(),
      last_reading: Cell::new((Instant::now(), thread_cpu_time())),
    })
  }

  /// The executor thread's CPU clock, read now (a system call: the thread
  /// CPU clock has no vDSO fast path).
  pub fn read_cpu_clock(&self) -> Duration {
    // The wall clock first, so an estimate from this reading counts every
    // nanosecond since it and stays an upper bound.
    let at = Instant::now();
    let cpu = thread_cpu_time();
    self.last_reading.set((at, cpu));
    cpu
  }

  /// The executor thread's CPU clock, or, if it was read less than
  /// [`CPU_CLOCK_REFRESH`] ago, that reading plus the wall time since, which
  /// is never below the true value. Stretches of JS start several times per
  /// request on a node spread over many workers; a clock read for each was a
  /// measurable share of the request's CPU. A stretch timed from an
  /// estimate is charged at most `CPU_CLOCK_REFRESH` less than it used.
  pub fn cpu_clock(&self) -> Duration {
    let (read_at, cpu) = self.last_reading.get();
    let since = read_at.elapsed();
    if since < CPU_CLOCK_REFRESH {
      cpu + since
    } else {
      self.read_cpu_clock()
    }
  }

  /// Counts a finished request's CPU time.
  pub fn record_request(&self, cpu: Duration) {
    self.requests.borrow_mut().record(cpu);
  }

  /// CPU time per request, for every request finished on this thread.
  pub fn requests_cpu(&self) -> CpuHistogram {
    *self.requests.borrow()
  }

  /// Marks the start of a stretch of JS in `watched` with `budget` of CPU;
  /// it is also stopped once the isolate is out of memory. Afterwards,
  /// [`WatchedIsolate::cpu_exceeded`] says whether its CPU time stopped it.
  pub fn begin(&self, watched: &Arc<WatchedIsolate>, budget: Duration) {
    watched.cpu_exceeded.store(false, Ordering::Release);
    let running = Running {
      watched: watched.clone(),
      cpu_budget: budget,
    };
    *self
      .shared
      .running
      .lock()
      .unwrap_or_else(|e| e.into_inner()) = Some(running);
    self.shared.stretch.fetch_add(1, Ordering::Release);
  }

  /// Marks the end of the stretch begun last.
  pub fn end(&self) {
    // Under the lock, so the watchdog (which terminates while holding it)
    // never stops an isolate whose stretch has already ended.
    let mut running = self
      .shared
      .running
      .lock()
      .unwrap_or_else(|e| e.into_inner());
    self.shared.stretch.fetch_add(1, Ordering::Release);
    *running = None;
  }
}

impl Drop for CpuWatchdog {
  fn drop(&mut self) {
    self.shared.closed.store(true, Ordering::Release);
  }
}

/// The watchdog thread: each tick, stops a stretch that has raised its
/// out-of-memory flag, or that has been running over its CPU budget since
/// it was first seen.
fn watch(clock: ThreadCpuClock, shared: &Shared) {
  // The stretch seen running and the CPU clock when it was first seen.
  let mut seen: Option<(u64, Duration)> = None;
  while !shared.closed.load(Ordering::Acquire) {
    std::thread::sleep(TICK);
    let stretch = shared.stretch.load(Ordering::Acquire);
    if stretch.is_multiple_of(2) {
      seen = None;
      continue;
    }
    let Some(now) = clock.now() else { return };
    let since = match seen {
      Some((id, since)) if id == stretch => since,
      _ => {
        seen = Some((stretch, now));
        now
      }
    };
    // Under the lock, and only if the same stretch still runs: end() takes
    // the lock before the stretch counter moves on.
    let guard = shared.running.lock().unwrap_or_else(|e| e.into_inner());
    let Some(running) = guard.as_ref() else {
      continue;
    };
    if shared.stretch.load(Ordering::Acquire) != stretch {
      continue;
    }
    // The stretch may have begun up to a tick before it was first seen.
    let over_budget = now.saturating_sub(since) + TICK >= running.cpu_budget;
    let watched = &running.watched;
    if watched.out_of_memory() {
      watched.isolate.terminate_execution();
    } else if over_budget {
      watched.cpu_exceeded.store(true, Ordering::Release);
      watched.isolate.terminate_execution();
    }
  }
}
