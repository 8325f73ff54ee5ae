//! The Send-able request and response types that cross from the HTTP server
//! threads to the executor thread that owns an isolate.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use tokio::sync::{mpsc, oneshot};

use crate::ext::websocket::WebSocketLink;

/// Why a request body stream ended early.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BodyError {
  /// The body exceeded the server's configured limit.
  #[error("request body larger than {limit} bytes")]
  TooLarge {
    /// The limit in bytes.
    limit: u64,
  },
  /// The client aborted or sent a malformed body.
  #[error("{0}")]
  Transport(String),
}

/// A request body: absent, or chunks arriving on a bounded channel.
#[derive(Debug)]
pub enum RequestBody {
  /// No body (GET, HEAD, or an empty POST).
  Empty,
  /// Chunks in order; the channel closes at the end of the body.
  Stream(mpsc::Receiver<Result<Bytes, BodyError>>),
}

/// An HTTP request as a worker sees it.
#[derive(Debug)]
pub struct WorkerRequest {
  /// The request method.
  pub method: Method,
  /// The absolute URL the client asked for (scheme, Host, path and query).
  pub url: String,
  /// The request headers.
  pub headers: HeaderMap,
  /// The request body.
  pub body: RequestBody,
  /// What the embedder knows for `request.cf`; `None` leaves it undefined.
  pub cf: Option<RequestCf>,
  /// A cron trigger's firing for the worker's `scheduled()` handler, in
  /// place of an HTTP request for `fetch()`.
  pub scheduled: Option<ScheduledEvent>,
  /// A call, over a service binding, to this method of the worker's
  /// entrypoint class in place of `fetch()`; the body holds the arguments
  /// (V8-serialized). Only a service binding sets it, never a client.
  pub rpc: Option<String>,
  /// The named export of the worker's main module (a `WorkerEntrypoint`
  /// class) that serves this request or RPC call in place of the default
  /// export. Only a service binding sets it, never a client.
  pub entrypoint: Option<String>,
  /// Tighter limits for this request than the worker's own, set by the
  /// dispatcher worker that called it (`env.DISPATCHER.get(name, args,
  /// { limits })`). Only a dispatch namespace binding sets them.
  pub limits: CallLimits,
}

/// Limits a caller sets on one request, each under the worker's own: the
/// lower of the two holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallLimits {
  /// CPU time the request may use.
  pub cpu: Option<std::time::Duration>,
  /// Subrequests the request may make.
  pub subrequests: Option<u32>,
}

/// One firing of a cron trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledEvent {
  /// The trigger's cron pattern, as configured.
  pub cron: String,
  /// When it was due, in milliseconds since the Unix epoch.
  pub scheduled_time_ms: u64,
}

impl WorkerRequest {
  /// An invocation of the worker's `scheduled()` handler (or "scheduled"
  /// listeners) for `event`, through the request path so that limits, logs
  /// and `waitUntil` apply as to a request. It is answered 200 when the
  /// handler completes and 500 when it throws or there is none.
  pub fn scheduled(event: ScheduledEvent) -> Self {
    Self {
      method: Method::from_bytes(b"SCHEDULED").unwrap_or(Method::POST),
      url: format!("cron:{}", event.cron),
      headers: HeaderMap::new(),
      body: RequestBody::Empty,
      cf: None,
      scheduled: Some(event),
      rpc: None,
      entrypoint: None,
      limits: CallLimits::default(),
    }
  }
}

/// What `request.cf` says of a request: what the node knows of it and its
/// connection. Made into JS only when a handler reads `request.cf`.
#[derive(Debug, Clone)]
pub struct RequestCf {
  /// The node's name.
  pub colo: std::sync::Arc<str>,
  /// `HTTP/1.1`, `HTTP/2` or `HTTP/3`.
  pub http_protocol: &'static str,
  /// `TLSv1.3` or `TLSv1.2`; `None` over plain HTTP.
  pub tls_version: Option<&'static str>,
  /// The connection's round-trip time in milliseconds, where measured.
  pub client_tcp_rtt: Option<u32>,
}

impl RequestCf {
  /// The object's JSON text, in Workers' field names.
  pub fn to_json(&self) -> String {
    let mut cf = serde_json::json!({
      "colo": &*self.colo,
      "httpProtocol": self.http_protocol,
      "tlsVersion": self.tls_version.unwrap_or(""),
    });
    if let Some(rtt) = self.client_tcp_rtt {
      cf["clientTcpRtt"] = rtt.into();
    }
    cf.to_string()
  }
}

/// A response body: complete, or streamed chunk by chunk as JS produces it.
#[derive(Debug)]
pub enum ResponseBody {
  /// The whole body at once.
  Full(Bytes),
  /// Chunks in order; the channel closes when the worker closes the stream.
  /// An `Err` means the worker failed mid-stream: the body must be cut off,
  /// not ended cleanly.
  Stream(mpsc::Receiver<Result<Bytes, BodyError>>),
  /// No body: the worker accepted a WebSocket upgrade (status 101), and the
  /// upgraded connection is to be pumped into this link.
  WebSocket(WebSocketLink),
}

/// A worker's response.
#[derive(Debug)]
pub struct WorkerResponse {
  /// The status code.
  pub status: StatusCode,
  /// The response headers.
  pub headers: HeaderMap,
  /// The response body.
  pub body: ResponseBody,
}

impl WorkerResponse {
  /// The same head with no body, as for a HEAD request: the worker's
  /// `content-length`, if it set one, stays.
  pub fn without_body(self) -> Self {
    Self {
      body: ResponseBody::Full(Bytes::new()),
      ..self
    }
  }

  /// A short plain-text response, used for errors the platform itself reports.
  pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Self {
    let mut headers = HeaderMap::new();
    headers.insert(
      http::header::CONTENT_TYPE,
      http::HeaderValue::from_static("text/plain;charset=UTF-8"),
    );
    Self {
      status,
      headers,
      body: ResponseBody::Full(body.into()),
    }
  }
}

/// A request on its way into an isolate, with the channel its answer goes to.
#[derive(Debug)]
pub struct ServeRequest {
  /// The request.
  pub request: WorkerRequest,
  /// Where the response goes. Dropped unanswered if the isolate dies.
  pub reply: oneshot::Sender<WorkerResponse>,
}

/// Told once a request has its answer, or never will: its response head has
/// gone out, or its reply was dropped unanswered. The executor counts the
/// requests each worker has in flight with it.
pub trait AnswerTracker {
  /// The request is no longer waiting for its response head.
  fn answered(&self);
}

/// Where a request's response goes, as an isolate holds it: the client's
/// channel, the tracker told when the reply is used or dropped, and the
/// outbox the response waits in until the isolate's turn is over.
pub struct Reply {
  sender: Option<oneshot::Sender<WorkerResponse>>,
  tracker: Option<Rc<dyn AnswerTracker>>,
  outbox: Option<Rc<Outbox>>,
}

impl Reply {
  /// A reply to `sender` that tells `tracker` (if any) once it is done, and
  /// sends through `outbox` (if any) rather than at once.
  pub fn new(
    sender: oneshot::Sender<WorkerResponse>,
    tracker: Option<Rc<dyn AnswerTracker>>,
    outbox: Option<Rc<Outbox>>,
  ) -> Self {
    Self {
      sender: Some(sender),
      tracker,
      outbox,
    }
  }

  /// The client's channel, for a request to be routed again; the tracker
  /// counts this reply as done.
  pub fn into_sender(mut self) -> Option<oneshot::Sender<WorkerResponse>> {
    self.sender.take()
  }

  /// Sends the response; `false` if the client has already gone.
  pub fn send(mut self, response: WorkerResponse) -> bool {
    let Some(sender) = self.sender.take() else {
      return false;
    };
    match &self.outbox {
      Some(outbox) if !sender.is_closed() => {
        outbox.push(sender, response);
        true
      }
      Some(_) => false,
      None => sender.send(response).is_ok(),
    }
  }
}

/// Responses held back until the isolates with work ready on the executor
/// have had their turns. Sending one wakes a connection task on another
/// thread; woken in the middle of a stretch of JS, that thread competes
/// with the executor for its core, and woken once per response it is woken
/// more often than it needs. A flusher task sends them all at once, and,
/// being woken like any task, runs after the tasks already ready.
#[derive(Default)]
pub struct Outbox {
  held: RefCell<Vec<(oneshot::Sender<WorkerResponse>, WorkerResponse)>>,
  flusher: RefCell<Option<std::task::Waker>>,
}

impl Outbox {
  fn push(&self, sender: oneshot::Sender<WorkerResponse>, response: WorkerResponse) {
    let mut held = self.held.borrow_mut();
    held.push((sender, response));
    if held.len() == 1
      && let Some(flusher) = self.flusher.borrow().as_ref()
    {
      flusher.wake_by_ref();
    }
  }

  /// Sends every response held.
  pub fn flush(&self) {
    let held = std::mem::take(&mut *self.held.borrow_mut());
    for (sender, response) in held {
      // A client that left is no error.
      let _ = sender.send(response);
    }
  }

  /// The flusher: sends what is held each time it is woken. Runs for as
  /// long as the executor thread does.
  pub async fn run_flusher(self: Rc<Self>) {
    std::future::poll_fn(|cx| {
      self.flush();
      let mut flusher = self.flusher.borrow_mut();
      if !flusher.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        *flusher = Some(cx.waker().clone());
      }
      std::task::Poll::<()>::Pending
    })
    .await
  }
}

impl Drop for Reply {
  fn drop(&mut self) {
    if let Some(tracker) = self.tracker.take() {
      tracker.answered();
    }
  }
}

impl std::fmt::Debug for Reply {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("Reply")
      .field("sent", &self.sender.is_none())
      .finish_non_exhaustive()
  }
}

/// A request on the executor's thread, on its way into its worker's
/// isolate.
#[derive(Debug)]
pub struct RoutedRequest {
  /// The request.
  pub request: WorkerRequest,
  /// Where its response goes.
  pub reply: Reply,
  /// When, without a response head, it gets 504 `wall-limit` instead.
  pub deadline: Instant,
}
