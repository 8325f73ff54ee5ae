//! The one request pipeline every transport shares: from a request head
//! and its body stream to the response. HTTP/1.1 and HTTP/2
//! (`server.rs`) and HTTP/3 (`h3.rs`) only adapt their streams to it, so a
//! request means the same whichever way it came:
//!
//! 1. the authority, from the URI (HTTP/2, HTTP/3) or `Host`, checked as an
//!    authority (IPv6 literals and ports included): 400 when missing or
//!    invalid;
//! 2. a declared body over the limit: 413;
//! 3. the route, by host (without its port) and path: 404;
//! 4. `outpost dev`'s scheduled-trigger paths, then static assets;
//! 5. the worker, with a `cf-ray`, `request.cf`, the absolute URL; a body
//!    that streams past the limit: 413; a worker that cannot run: 503;
//!    HEAD keeps the head and drops the body.
//!
//! A WebSocket answer is returned as it is: upgrading is the transport's.
//! Request bodies go through one forwarder, [`stream_body`], whatever
//! [`BodySource`] the transport reads them from.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Method, StatusCode, Uri};
use outpost_runtime::{BodyError, RequestBody, ResponseBody, WorkerRequest, WorkerResponse};
use tokio::sync::mpsc;

use crate::convert::{self, ConnectionInfo};
use crate::dispatch::Dispatcher;
use crate::routes::Routes;
use crate::server::ServerConfig;

/// How many request chunks may wait for the worker before the client is
/// paused.
const REQUEST_CHUNKS_BUFFERED: usize = 8;

/// A transport's request body, read one chunk at a time.
pub(crate) trait BodySource: Send + 'static {
  /// The next chunk of data; `None` once the body has ended.
  fn next_chunk(&mut self) -> impl Future<Output = Option<Result<Bytes, String>>> + Send;

  /// Asks the peer to stop sending: the body crossed the limit.
  fn refuse(&mut self) {}
}

/// Set when a streamed request body crossed the limit, so the pipeline
/// answers 413 whatever the worker replied.
#[derive(Default, Clone)]
pub(crate) struct Overflow(Arc<AtomicBool>);

impl Overflow {
  /// Whether the body crossed the limit.
  pub(crate) fn happened(&self) -> bool {
    self.0.load(Ordering::Relaxed)
  }

  fn raise(&self) {
    self.0.store(true, Ordering::Relaxed);
  }
}

/// A request body as the worker reads it: `None` (the transport knows
/// there is no body) gives an empty one; otherwise it streams through a
/// bounded channel, so a slow worker pauses the client, and is cut off,
/// with `Overflow` raised, past `max_body` bytes.
pub(crate) fn stream_body(
  source: Option<impl BodySource>,
  max_body: u64,
) -> (RequestBody, Overflow) {
  let overflow = Overflow::default();
  let Some(source) = source else {
    return (RequestBody::Empty, overflow);
  };
  let (tx, rx) = mpsc::channel(REQUEST_CHUNKS_BUFFERED);
  tokio::spawn(forward_body(source, tx, max_body, overflow.clone()));
  (RequestBody::Stream(rx), overflow)
}

async fn forward_body(
  mut source: impl BodySource,
  tx: mpsc::Sender<Result<Bytes, BodyError>>,
  max_body: u64,
  overflow: Overflow,
) {
  let mut received: u64 = 0;
  while let Some(chunk) = source.next_chunk().await {
    let chunk = match chunk {
      Ok(chunk) => chunk,
      Err(err) => {
        let _ = tx.send(Err(BodyError::Transport(err))).await;
        return;
      }
    };
    received += chunk.len() as u64;
    if received > max_body {
      overflow.raise();
      source.refuse();
      let _ = tx.send(Err(BodyError::TooLarge { limit: max_body })).await;
      return;
    }
    if tx.send(Ok(chunk)).await.is_err() {
      return; // the worker stopped reading
    }
  }
}

/// What every transport serves from.
pub(crate) struct Pipeline {
  /// The live routes.
  pub routes: Routes,
  /// The executors.
  pub dispatcher: Arc<Dispatcher>,
  /// Limits and node settings.
  pub config: ServerConfig,
}

/// A request as a transport hands it over.
pub(crate) struct Arrival {
  /// Method, URI, version and headers.
  pub head: http::request::Parts,
  /// The body, streaming (the transport enforces the limit as it reads).
  pub body: RequestBody,
  /// Raised by the transport when the body streamed past the limit.
  pub overflow: Overflow,
  /// `http` or `https`, for the URL the worker sees.
  pub scheme: &'static str,
  /// What the connection tells `request.cf`.
  pub info: ConnectionInfo,
}

/// The authority a request names: its URI's, else its `Host` header's;
/// `None` when neither is there or it is not a valid authority.
pub(crate) fn authority(head: &http::request::Parts) -> Option<http::uri::Authority> {
  if let Some(authority) = head.uri.authority() {
    return Some(authority.clone());
  }
  let host = head.headers.get(http::header::HOST)?.to_str().ok()?;
  host.parse().ok()
}

impl Pipeline {
  /// Answers one request.
  pub(crate) async fn serve(&self, arrival: Arrival) -> WorkerResponse {
    let Arrival {
      mut head,
      body,
      overflow,
      scheme,
      info,
    } = arrival;
    let Some(authority) = authority(&head) else {
      return WorkerResponse::text(
        StatusCode::BAD_REQUEST,
        "Bad request: missing or invalid Host.\n",
      );
    };
    let declared = head
      .headers
      .get(http::header::CONTENT_LENGTH)
      .and_then(|v| v.to_str().ok())
      .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > self.config.max_body_bytes) {
      return too_large();
    }
    // `host()` keeps an IPv6 literal's brackets and drops the port.
    let host = authority.host();
    let path = head.uri.path();
    let table = self.routes.current();
    let Some(worker) = table.route(host, path).map(str::to_owned) else {
      return WorkerResponse::text(
        StatusCode::NOT_FOUND,
        format!("No worker is routed for host {host:?} or path {path:?}.\n"),
      );
    };
    if self.config.scheduled_endpoints {
      let now = crate::scheduled::now_ms();
      if let Some(event) = crate::scheduled::dev_trigger(path, head.uri.query(), now) {
        return self.run_dev_trigger(&worker, event).await;
      }
    }
    if let Some(site) = table.assets_for(&worker) {
      let uri = &head.uri;
      if let Some(asset) = site.answer(&head.method, uri.path(), uri.query(), &head.headers) {
        return asset.into();
      }
    }
    let target = head.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{scheme}://{authority}{target}");
    if url.parse::<Uri>().is_err() {
      return WorkerResponse::text(StatusCode::BAD_REQUEST, "Bad request: invalid target.\n");
    }
    let head_only = head.method == Method::HEAD;
    // Names the request in its worker's log lines (and `outpost tail`).
    head.headers.insert("cf-ray", convert::new_ray());
    // The host's own: a client's would cut short its worker's service calls.
    head.headers.remove(outpost_runtime::SERVICE_DEPTH_HEADER);
    let request = WorkerRequest {
      cf: Some(convert::request_cf(&self.config.colo, head.version, info)),
      method: head.method,
      url,
      headers: head.headers,
      body,
      scheduled: None,
      rpc: None,
      entrypoint: None,
      limits: Default::default(),
    };
    let response = self
      .dispatcher
      .executor_for(&worker)
      .dispatch(&worker, request)
      .await;
    match response {
      _ if overflow.happened() => too_large(),
      Ok(response) if matches!(response.body, ResponseBody::WebSocket(_)) => response,
      Ok(response) if head_only => response.without_body(),
      Ok(response) => response,
      Err(err) => {
        tracing::error!(worker, "dispatch failed: {err}");
        WorkerResponse::text(
          StatusCode::SERVICE_UNAVAILABLE,
          "The worker is unavailable.\n",
        )
      }
    }
  }

  /// Runs `worker`'s `scheduled()` for a request to a dev trigger path, as
  /// wrangler's dev server does.
  async fn run_dev_trigger(
    &self,
    worker: &str,
    event: outpost_runtime::ScheduledEvent,
  ) -> WorkerResponse {
    let executor = self.dispatcher.executor_for(worker);
    let outcome = crate::scheduled::run_scheduled(executor, worker, event).await;
    match outcome.ok {
      true => WorkerResponse::text(StatusCode::OK, "Ran scheduled event\n"),
      false => WorkerResponse::text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The scheduled event failed: see the worker's log.\n",
      ),
    }
  }
}

fn too_large() -> WorkerResponse {
  WorkerResponse::text(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.\n")
}
