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
//!
//! A dispatch namespace binding (`[[dispatch_namespaces]]`) is the same
//! path with a user worker's name: `env.DISPATCHER.get(name, args,
//! { limits })` gives a stub whose calls carry that name and the call's
//! [`CallLimits`](crate::ext::serve::CallLimits) to the embedder, which looks the worker up in the
//! namespace.

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

/// Where a service call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceTarget<'a> {
  /// The binding called through.
  pub binding: &'a str,
  /// For a dispatch namespace binding, the user worker `get()` named.
  pub worker: Option<&'a str>,
}

/// Why the embedder could not run a service call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceFailure {
  /// The dispatch namespace holds no user worker of that name.
  NoSuchWorker,
  /// Anything else: what failed.
  Failed(String),
}

/// What runs a worker's service bindings: the embedder's, since only it
/// knows where the bound worker runs.
pub trait ServiceFetcher: Send + Sync + std::fmt::Debug {
  /// Runs `request` on the worker `target` names.
  fn fetch(
    &self,
    target: ServiceTarget<'_>,
    request: WorkerRequest,
  ) -> Pin<Box<dyn Future<Output = Result<WorkerResponse, ServiceFailure>>>>;
}

/// A worker's service bindings: their names in `env`, and what runs them.
#[derive(Debug, Clone)]
pub struct ServiceBindings {
  /// Service binding names, each `env.NAME`.
  pub names: Vec<String>,
  /// Dispatch namespace binding names, each `env.NAME` with `get()`.
  pub namespaces: Vec<String>,
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
  /// The dispatch namespace has no user worker of that name; the message
  /// starts as Workers' does, which dispatchers test for.
  #[class(generic)]
  #[error("Worker not found: {worker:?} is not in the dispatch namespace bound as {binding}")]
  NoSuchWorker {
    /// The namespace's binding.
    binding: String,
    /// The user worker asked for.
    worker: String,
  },
  /// A user worker broke a limit (its own or the dispatcher's) while
  /// answering; thrown in the dispatcher, as in Workers.
  #[class(generic)]
  #[error("Worker {worker:?} exceeded its {limit}")]
  Exceeded {
    /// The user worker.
    worker: String,
    /// Which limit, in words.
    limit: &'static str,
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
