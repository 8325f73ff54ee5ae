//! The `service` area: service bindings (`[[services]]`), a worker's
//! `env.AUTH.fetch()` and `env.AUTH.method()` (RPC) to another worker on
//! the same node, with no network hop.
//!
//! The JS (`js-api/src/service/10_service.js`) counts each call as a
//! subrequest and calls the host straight: [`op_service_fetch`] with the
//! request's parts (its body as a stream resource), [`op_service_rpc`]
//! with the V8-serialized arguments. Either becomes a [`WorkerRequest`]
//! for the embedder's [`ServiceFetcher`], which runs it on the bound worker
//! (the callee's CPU is the callee's), and the [`WorkerResponse`] comes
//! back, a streamed body as a resource JS reads as a ReadableStream. The
//! callee's request carries the caller's `cf-ray`, so both workers' log
//! lines and tails name the same ray, and its depth, at most [`MAX_DEPTH`].
//! Worker code has no access to ops, so only these stubs make such calls.

mod body;
mod ops;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::ext::serve::{WorkerRequest, WorkerResponse};

pub use ops::{op_service_fetch, op_service_rpc};

/// How many service calls deep a request is: the callee sees its depth in
/// this header (the edge drops a client's).
pub const DEPTH_HEADER: &str = "x-outpost-service-depth";

/// The most service hops below one incoming request.
pub const MAX_DEPTH: u8 = 16;

/// What runs a worker's service bindings: the embedder's, since only it
/// knows where the bound worker runs.
pub trait ServiceFetcher: Send + Sync + std::fmt::Debug {
  /// Runs `request` on the worker bound as `binding`.
  fn fetch(
    &self,
    binding: &str,
    request: WorkerRequest,
  ) -> Pin<Box<dyn Future<Output = Result<WorkerResponse, String>>>>;
}

/// A worker's service bindings: their names in `env`, and what runs them.
#[derive(Debug, Clone)]
pub struct ServiceBindings {
  /// Binding names, each `env.NAME`.
  pub names: Vec<String>,
  /// What runs a request to one of them.
  pub fetcher: Arc<dyn ServiceFetcher>,
}

/// Why a service binding's call failed.
#[derive(Debug, thiserror::Error, deno_error::JsError)]
pub enum ServiceError {
  /// The worker has no binding of that name.
  #[class(type)]
  #[error("the worker has no service binding named {0:?}")]
  Unbound(String),
  /// Service calls nested too deep.
  #[class(range)]
  #[error("service bindings nested more than {MAX_DEPTH} deep")]
  TooDeep,
  /// A header the request cannot carry.
  #[class(type)]
  #[error("invalid header: {0}")]
  Header(String),
  /// The request's body stream is gone.
  #[class(type)]
  #[error("the request's body cannot be read: {0}")]
  Body(String),
  /// The bound worker could not answer.
  #[class(type)]
  #[error("service binding {binding}: {why}")]
  Call {
    /// The binding.
    binding: String,
    /// What failed.
    why: String,
  },
}

deno_core::extension!(
  outpost_service,
  deps = [deno_web, deno_fetch, outpost_fetch],
  ops = [op_service_fetch, op_service_rpc],
  esm = [
    dir "../js-api/src",
    "ext:outpost_service/10_service.js" = "service/10_service.js",
  ],
);
