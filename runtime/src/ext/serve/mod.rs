//! The `serve` area: carries HTTP requests into an isolate and responses out.
//!
//! The worker's isolate takes [`RoutedRequest`]s off its channel in batches,
//! registers them with [`accept_batch`] and calls the dispatch function that
//! JS (`js-api/src/serve/`) handed the host, which runs the worker's handler
//! for each. JS answers through the `op_serve_respond_*` ops. Bodies stream
//! both ways through bounded channels.

mod cpu;
mod error;
mod ops;
mod types;

pub use cpu::{CpuLedger, RequestSummary};
pub use error::ServeError;
pub use ops::{
  accept_batch, answer_all, awaiting_answer, expire, ray_header_of, ray_of, service_depth_of,
  subrequest_limit_of,
};
#[allow(
  unused_imports,
  reason = "build.rs compiles this module without the library that re-exports these"
)]
pub use types::{
  AnswerTracker, BodyError, CallLimits, Outbox, Reply, RequestBody, RequestCf, ResponseBody,
  RoutedRequest, ScheduledEvent, ServeRequest, WorkerRequest, WorkerResponse,
};

deno_core::extension!(
  outpost_serve,
  deps = [deno_web, deno_fetch, outpost_fetch, outpost_websocket],
  ops = [
    ops::op_serve_read_body,
    ops::op_serve_respond_static,
    ops::op_serve_respond_text,
    ops::op_serve_respond_stream,
    ops::op_serve_respond_websocket,
    ops::op_serve_write_body,
    ops::op_serve_close_body,
    ops::op_serve_fail,
    ops::op_serve_request_cf,
    ops::op_serve_entrypoint,
  ],
  esm = [
    dir "../js-api/src",
    "ext:outpost_serve/10_fetch_event.js" = "serve/10_fetch_event.js",
    "ext:outpost_serve/15_scheduled.js" = "serve/15_scheduled.js",
    "ext:outpost_serve/20_dispatch.js" = "serve/20_dispatch.js",
  ],
);
