//! The `serve` area: carries HTTP requests into an isolate and responses out.
//!
//! The executor pushes [`ServeRequest`]s into a [`RequestQueue`] in the
//! isolate's `OpState`. JS (`js-api/src/serve/`) pulls them with
//! `op_serve_next_requests`, runs the worker's handler and answers through the
//! `op_serve_respond_*` ops. Bodies stream both ways through bounded channels.

mod cpu;
mod error;
mod ops;
mod types;

pub use cpu::CpuLedger;
pub use error::ServeError;
pub use ops::answer_all;
#[allow(
  unused_imports,
  reason = "build.rs compiles this module without the library that re-exports these"
)]
pub use types::{
  BodyError, RequestBody, ResponseBody, ServeRequest, WorkerRequest, WorkerResponse,
};

use std::cell::RefCell;
use std::rc::Rc;

use tokio::sync::mpsc;

/// Requests waiting for this isolate's JS to pick them up.
#[derive(Clone)]
pub struct RequestQueue(pub Rc<RefCell<Option<mpsc::UnboundedReceiver<ServeRequest>>>>);

impl RequestQueue {
  /// Wraps the receiving end of a worker's request channel.
  pub fn new(rx: mpsc::UnboundedReceiver<ServeRequest>) -> Self {
    Self(Rc::new(RefCell::new(Some(rx))))
  }
}

deno_core::extension!(
  outpost_serve,
  deps = [deno_web, deno_fetch],
  ops = [
    ops::op_serve_next_requests,
    ops::op_serve_read_body,
    ops::op_serve_respond_static,
    ops::op_serve_respond_stream,
    ops::op_serve_write_body,
    ops::op_serve_close_body,
    ops::op_serve_fail,
  ],
  esm = [
    dir "../js-api/src",
    "ext:outpost_serve/10_fetch_event.js" = "serve/10_fetch_event.js",
    "ext:outpost_serve/20_dispatch.js" = "serve/20_dispatch.js",
  ],
);
