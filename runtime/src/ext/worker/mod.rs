//! The `worker` area: the global scope a worker sees and the bootstrap that
//! starts it (`js-api/src/worker/`), plus the console sink.

mod ops;

use std::sync::Arc;

/// How bad a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
  /// `console.debug`.
  Debug,
  /// `console.log`, `console.info`.
  Info,
  /// `console.warn`.
  Warn,
  /// `console.error`, and uncaught exceptions.
  Error,
}

/// One line a worker wrote, for a [`LogSink`].
#[derive(Debug, Clone)]
pub struct WorkerLogLine {
  /// The worker (its executor name).
  pub worker: Arc<str>,
  /// How bad.
  pub level: LogLevel,
  /// The text, without its trailing newline.
  pub message: String,
  /// The `cf-ray` of the request it was written for, if it was written
  /// while one was handled.
  pub ray: Option<String>,
}

/// A request's summary once it is over, for a [`LogSink`].
#[derive(Debug, Clone)]
pub struct WorkerRequestLine {
  /// The worker (its executor name).
  pub worker: Arc<str>,
  /// The method.
  pub method: String,
  /// The URL.
  pub url: String,
  /// The status answered (0: none was).
  pub status: u16,
  /// `ok`, `exception`, or the limit that stopped it (`cpu-limit`, ...).
  pub outcome: &'static str,
  /// Its share of the isolate's CPU time.
  pub cpu: std::time::Duration,
  /// From its arrival in the isolate to its end (the body's included).
  pub wall: std::time::Duration,
  /// Its `cf-ray`.
  pub ray: Option<String>,
}

/// Where workers' console output, uncaught exceptions and request
/// summaries go besides the node's log (`outpost tail`). `wants` is asked
/// before each line is built, so a sink nobody listens to costs a check.
pub trait LogSink: Send + Sync + std::fmt::Debug + 'static {
  /// Whether lines of `worker` (an executor name) are wanted now.
  fn wants(&self, worker: &str) -> bool;
  /// Takes one line; must not block.
  fn log(&self, line: WorkerLogLine);
  /// Takes one request's summary; must not block.
  fn request(&self, line: WorkerRequestLine);
}

/// Hands a line to the isolate's sink, if it wants the worker; `rid` is
/// the request it was written for.
pub(crate) fn to_sink(
  state: &deno_core::OpState,
  level: LogLevel,
  message: &str,
  rid: Option<deno_core::ResourceId>,
) {
  let Some(log) = state.try_borrow::<WorkerLog>() else {
    return;
  };
  if !log.sink.wants(&log.worker) {
    return;
  }
  let ray = rid.and_then(|rid| crate::ext::serve::ray_of(state, rid));
  log.sink.log(WorkerLogLine {
    worker: log.worker.clone(),
    level,
    message: message.to_owned(),
    ray,
  });
}

/// The isolate's worker and its sink, in the isolate's `OpState`.
#[derive(Clone)]
pub struct WorkerLog {
  /// The worker (its executor name).
  pub worker: Arc<str>,
  /// Where its lines go.
  pub sink: Arc<dyn LogSink>,
}

deno_core::extension!(
  outpost_worker,
  deps = [
    deno_webidl,
    deno_web,
    deno_crypto,
    deno_fetch,
    outpost_cache,
    outpost_fetch,
    outpost_html,
    outpost_kv,
    outpost_node,
    outpost_serve,
    outpost_websocket
  ],
  ops = [ops::op_worker_log],
  esm_entry_point = "ext:outpost_worker/99_main.js",
  esm = [
    dir "../js-api/src",
    "ext:outpost_worker/00_globals.js" = "worker/00_globals.js",
    "node:outpost/cloudflare-workers" = "worker/40_cloudflare_workers.js",
    "ext:outpost_worker/99_main.js" = "worker/99_main.js",
  ],
  lazy_loaded_js = [
    dir "../js-api/src",
    "ext:deno_net/02_tls.js" = "worker/01_deno_net_shim.js",
  ],
);
