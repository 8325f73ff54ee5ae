//! `op_serve_*`: the ops the JS dispatch loop uses to take requests and send
//! responses.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use deno_core::convert::ByteString;
use deno_core::{
  AsyncRefCell, JsBuffer, OpState, RcRef, Resource, ResourceId, ToJsBuffer, op2, v8,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::sync::mpsc;

use super::cpu::RequestSummary;
use super::types::{
  BodyError, Reply, RequestBody, ResponseBody, RoutedRequest, ScheduledEvent, WorkerResponse,
};
use super::{CpuLedger, ServeError};
use crate::ext::worker::WorkerLog;

/// How many response chunks may wait for the client before JS is paused.
const RESPONSE_CHUNKS_BUFFERED: usize = 8;

/// One request between its arrival in JS and the end of its response.
struct InflightRequest {
  body: AsyncRefCell<Option<mpsc::Receiver<Result<Bytes, BodyError>>>>,
  reply: RefCell<Option<Reply>>,
  /// The host answered it already (wall-clock limit); JS's answer is dropped.
  expired: Cell<bool>,
  response_body: RefCell<Option<mpsc::Sender<Result<Bytes, BodyError>>>>,
  /// Its `cf-ray`, which names it in the worker's log lines.
  ray: Option<http::HeaderValue>,
  /// How many service-binding calls deep it is (0: from a client).
  service_depth: u8,
  /// The named entrypoint that serves it, if not the default export.
  entrypoint: Option<String>,
  /// The subrequests its caller allows it, if fewer than the worker's.
  subrequest_limit: Option<u32>,
  /// What `request.cf` says.
  cf: Option<super::types::RequestCf>,
  /// Where its worker is tailed: what its summary needs.
  tailed: Option<Tailed>,
  /// The status it was answered with (0: none yet).
  status: Cell<u16>,
  /// `ok`, `exception`, or the limit that stopped it.
  outcome: Cell<&'static str>,
}

/// What a tailed request's summary needs from its arrival.
struct Tailed {
  method: String,
  url: String,
  arrived: Instant,
}

impl InflightRequest {
  fn summary(&self) -> Option<RequestSummary> {
    let tailed = self.tailed.as_ref()?;
    Some(RequestSummary {
      method: tailed.method.clone(),
      url: tailed.url.clone(),
      status: self.status.get(),
      outcome: self.outcome.get(),
      wall: tailed.arrived.elapsed(),
      ray: self
        .ray
        .as_ref()
        .and_then(|r| r.to_str().ok())
        .map(str::to_owned),
    })
  }

  /// Records how it ends: `status` if it has no response head yet.
  fn ends(&self, status: u16, outcome: &'static str) {
    if self.reply.borrow().is_some() {
      self.status.set(status);
    }
    self.outcome.set(outcome);
  }
}

impl Resource for InflightRequest {
  fn name(&self) -> std::borrow::Cow<'_, str> {
    "outpostInflightRequest".into()
  }
}

/// The head of a request on its way into JS.
pub struct RequestHead {
  rid: ResourceId,
  method: http::Method,
  url: String,
  headers: HeaderMap,
  has_body: bool,
  scheduled: Option<ScheduledEvent>,
  rpc: Option<String>,
  /// Whether a named entrypoint serves it (JS asks which).
  named: bool,
}

/// The requests one call of JS's dispatch function receives:
/// [`RequestBatch::FIELDS`] values per request, `rid, method, url, hasBody,
/// headerText`; see [`RequestBatch::into_args`].
///
/// - `method` is an index into [`KNOWN_METHODS`] (`METHODS` in
///   `20_dispatch.js`), or the method's name if it is not one of them.
/// - `headerText` is every header as `name\nvalue`, joined by `\n` (neither
///   names nor values can hold a newline); JS splits it only if the handler
///   reads the headers.
///
/// Primitives only, because building V8 objects and arrays through its API
/// costs more than anything else in handing a request over, and an object
/// with named properties made from Rust is in dictionary mode too.
pub struct RequestBatch(Vec<RequestHead>);

impl RequestBatch {
  /// How many values one request takes.
  const FIELDS: usize = 5;

  /// The arguments for JS's dispatch function: a lone request's values as
  /// arguments of their own, or several requests' values in one flat array.
  /// On a node serving many workers most batches hold one request, and
  /// there an array is a V8 allocation in memory the isolate has not
  /// touched for a while.
  pub fn into_args<'a>(
    self,
    scope: &mut v8::PinScope<'a, '_>,
  ) -> Result<Vec<v8::Local<'a, v8::Value>>, ServeError> {
    let mut fields = Vec::with_capacity(self.0.len() * Self::FIELDS);
    let mut text = Vec::new();
    let lone = self.0.len() == 1;
    for head in self.0 {
      fields.push(v8::Integer::new_from_unsigned(scope, head.rid).into());
      // A cron firing: method -1, then its cron and time where the URL and
      // headers go (`SCHEDULED` in js-api/src/serve/20_dispatch.js).
      if let Some(event) = head.scheduled {
        fields.push(v8::Integer::new(scope, -1).into());
        fields.push(
          v8::String::new(scope, &event.cron)
            .ok_or(ServeError::HeadTooLarge)?
            .into(),
        );
        fields.push(v8::Boolean::new(scope, false).into());
        fields.push(byte_string(
          scope,
          event.scheduled_time_ms.to_string().as_bytes(),
        )?);
        continue;
      }
      // An RPC call: method -2, then the entrypoint method's name where the
      // URL goes (`RPC` in js-api/src/serve/20_dispatch.js).
      // A request for a named entrypoint: method -3, and the method and
      // the URL, space-separated, where the URL goes (`NAMED`).
      let named_target;
      let (method, url) = match &head.rpc {
        Some(name) => (v8::Integer::new(scope, -2).into(), name.as_str()),
        None if head.named => {
          named_target = format!("{} {}", head.method, head.url);
          (v8::Integer::new(scope, -3).into(), named_target.as_str())
        }
        None => {
          let method = match KNOWN_METHODS.iter().position(|known| *known == head.method) {
            Some(index) => v8::Integer::new(scope, index as i32).into(),
            None => byte_string(scope, head.method.as_str().as_bytes())?,
          };
          (method, head.url.as_str())
        }
      };
      fields.push(method);
      // URLs are nearly always ASCII, which V8 takes without decoding.
      let url = if url.is_ascii() {
        byte_string(scope, url.as_bytes())?
      } else {
        v8::String::new(scope, url)
          .ok_or(ServeError::HeadTooLarge)?
          .into()
      };
      fields.push(url);
      fields.push(v8::Boolean::new(scope, head.has_body).into());
      header_text(&head.headers, &mut text);
      fields.push(byte_string(scope, &text)?);
    }
    if lone {
      return Ok(fields);
    }
    Ok(vec![v8::Array::new_with_elements(scope, &fields).into()])
  }
}

/// Methods JS receives as an index into this list; the order must match
/// `METHODS` in `js-api/src/serve/20_dispatch.js`.
const KNOWN_METHODS: [http::Method; 9] = [
  http::Method::GET,
  http::Method::HEAD,
  http::Method::POST,
  http::Method::PUT,
  http::Method::DELETE,
  http::Method::OPTIONS,
  http::Method::PATCH,
  http::Method::CONNECT,
  http::Method::TRACE,
];

/// Bytes as a one-byte string (a ByteString: one byte per code unit).
fn byte_string<'a>(
  scope: &mut v8::PinScope<'a, '_>,
  bytes: &[u8],
) -> Result<v8::Local<'a, v8::Value>, ServeError> {
  v8::String::new_from_one_byte(scope, bytes, v8::NewStringType::Normal)
    .map(Into::into)
    .ok_or(ServeError::HeadTooLarge)
}

/// Writes `headers` into `text` as `name\nvalue\nname\nvalue…`.
fn header_text(headers: &HeaderMap, text: &mut Vec<u8>) {
  text.clear();
  for (name, value) in headers {
    if !text.is_empty() {
      text.push(b'\n');
    }
    text.extend_from_slice(name.as_str().as_bytes());
    text.push(b'\n');
    text.extend_from_slice(value.as_bytes());
  }
}

/// Registers each request of a batch as in flight and describes their
/// heads for JS's dispatch function. Each request's wall-clock deadline goes
/// onto `deadlines`, in arrival order.
pub fn accept_batch(
  state: &mut OpState,
  batch: Vec<RoutedRequest>,
  deadlines: &mut VecDeque<(Instant, ResourceId)>,
) -> RequestBatch {
  RequestBatch(
    batch
      .into_iter()
      .map(|routed| {
        let deadline = routed.deadline;
        let head = accept(state, routed);
        deadlines.push_back((deadline, head.rid));
        head
      })
      .collect(),
  )
}

/// Registers a request as in flight and describes its head for JS.
fn accept(state: &mut OpState, routed: RoutedRequest) -> RequestHead {
  let request = routed.request;
  let (body, has_body) = match request.body {
    RequestBody::Empty => (None, false),
    RequestBody::Stream(rx) => (Some(rx), true),
  };
  let tailed = state
    .try_borrow::<WorkerLog>()
    .is_some_and(|log| log.sink.wants(&log.worker))
    .then(|| Tailed {
      method: request.method.to_string(),
      url: request.url.clone(),
      arrived: Instant::now(),
    });
  let rid = state.resource_table.add(InflightRequest {
    body: AsyncRefCell::new(body),
    reply: RefCell::new(Some(routed.reply)),
    expired: Cell::new(false),
    response_body: RefCell::new(None),
    ray: request.headers.get("cf-ray").cloned(),
    service_depth: request
      .headers
      .get(crate::ext::service::DEPTH_HEADER)
      .and_then(|depth| depth.to_str().ok()?.parse().ok())
      .unwrap_or(0),
    entrypoint: request.entrypoint.clone(),
    subrequest_limit: request.limits.subrequests,
    cf: request.cf,
    tailed,
    status: Cell::new(0),
    outcome: Cell::new("ok"),
  });
  if let Some(ledger) = state.try_borrow::<CpuLedger>() {
    ledger.open(rid, request.limits.cpu);
  }
  RequestHead {
    rid,
    method: request.method,
    url: request.url,
    headers: request.headers,
    has_body,
    scheduled: request.scheduled,
    rpc: request.rpc,
    named: request.entrypoint.is_some(),
  }
}

/// Whether request `rid` is still in flight without a response head.
pub fn awaiting_answer(state: &OpState, rid: ResourceId) -> bool {
  state
    .resource_table
    .get::<InflightRequest>(rid)
    .is_ok_and(|inflight| inflight.reply.borrow().is_some())
}

/// Answers request `rid` with `response` if it still has no response head,
/// as when its wall-clock limit runs out; a later answer from JS then finds
/// the request gone. Returns whether it was answered here.
pub fn expire(state: &mut OpState, rid: ResourceId, response: WorkerResponse) -> bool {
  let Ok(inflight) = state.resource_table.get::<InflightRequest>(rid) else {
    return false;
  };
  inflight.ends(response.status.as_u16(), "wall-limit");
  let Some(reply) = inflight.reply.borrow_mut().take() else {
    return false;
  };
  reply.send(response);
  // The resource stays until JS answers (then dropped quietly) or the
  // isolate goes: it may still be running, and its CPU still counts.
  inflight.expired.set(true);
  true
}

/// Reads the next chunk of a request body; `null` at its end.
#[op2]
#[serde]
pub async fn op_serve_read_body(
  state: Rc<RefCell<OpState>>,
  #[smi] rid: ResourceId,
) -> Result<Option<ToJsBuffer>, ServeError> {
  let inflight = state
    .borrow()
    .resource_table
    .get::<InflightRequest>(rid)
    .map_err(|_| ServeError::RequestGone)?;
  let mut body = RcRef::map(&inflight, |r| &r.body).borrow_mut().await;
  let Some(rx) = body.as_mut() else {
    return Ok(None);
  };
  match rx.recv().await {
    Some(Ok(chunk)) => Ok(Some(chunk.to_vec().into())),
    Some(Err(err)) => {
      *body = None;
      Err(err.into())
    }
    None => {
      *body = None;
      Ok(None)
    }
  }
}

fn response_head(
  status: u16,
  headers: Vec<(ByteString, ByteString)>,
) -> Result<(StatusCode, HeaderMap), ServeError> {
  let status = StatusCode::from_u16(status)
    .ok()
    .filter(|s| (200..=599).contains(&s.as_u16()))
    .ok_or(ServeError::InvalidStatus(status))?;
  let mut map = HeaderMap::with_capacity(headers.len());
  for (name, value) in headers {
    let name = HeaderName::from_bytes(&name)
      .map_err(|_| ServeError::InvalidHeader(String::from_utf8_lossy(&name).into_owned()))?;
    let value =
      HeaderValue::from_bytes(&value).map_err(|_| ServeError::InvalidHeader(name.to_string()))?;
    // The platform's mark of a broken limit: a worker cannot claim one.
    if name == "outpost-error" {
      continue;
    }
    map.append(name, value);
  }
  Ok((status, map))
}

/// The reply of request `rid`, for JS's answer; `None` if the host already
/// answered it (its wall-clock limit ran out), so the answer is dropped.
fn take_reply(
  state: &mut OpState,
  rid: ResourceId,
) -> Result<Option<(Rc<InflightRequest>, Reply)>, ServeError> {
  let inflight = state
    .resource_table
    .get::<InflightRequest>(rid)
    .map_err(|_| ServeError::RequestGone)?;
  let reply = inflight.reply.borrow_mut().take();
  match reply {
    Some(reply) => Ok(Some((inflight, reply))),
    None if inflight.expired.get() => Ok(None),
    None => Err(ServeError::RequestGone),
  }
}

/// `request.cf` of request `rid` as JSON text; null once the request is
/// over or when the embedder gave none.
#[op2]
#[string]
pub fn op_serve_request_cf(state: &OpState, #[smi] rid: ResourceId) -> Option<String> {
  let inflight = state.resource_table.get::<InflightRequest>(rid).ok()?;
  inflight.cf.as_ref().map(super::types::RequestCf::to_json)
}

/// The `cf-ray` of request `rid`, while it is in flight.
pub fn ray_of(state: &OpState, rid: ResourceId) -> Option<String> {
  let ray = ray_header_of(state, rid)?;
  ray.to_str().ok().map(str::to_owned)
}

/// The `cf-ray` header of request `rid`, while it is in flight.
pub fn ray_header_of(state: &OpState, rid: ResourceId) -> Option<http::HeaderValue> {
  let inflight = state.resource_table.get::<InflightRequest>(rid).ok()?;
  inflight.ray.clone()
}

/// How many service-binding calls deep request `rid` is (0 if it is not
/// in flight).
pub fn service_depth_of(state: &OpState, rid: ResourceId) -> u8 {
  state
    .resource_table
    .get::<InflightRequest>(rid)
    .map_or(0, |inflight| inflight.service_depth)
}

/// The subrequests the caller of request `rid` allows it, if it set a
/// limit (a dispatcher worker's per-call limit).
pub fn subrequest_limit_of(state: &OpState, rid: ResourceId) -> Option<u32> {
  state
    .resource_table
    .get::<InflightRequest>(rid)
    .ok()?
    .subrequest_limit
}

/// The named entrypoint that serves request `rid`, if any: what JS asks
/// of an RPC call or a request marked `NAMED`.
#[op2]
#[string]
pub fn op_serve_entrypoint(state: &mut OpState, #[smi] rid: ResourceId) -> Option<String> {
  let inflight = state.resource_table.get::<InflightRequest>(rid).ok()?;
  inflight.entrypoint.clone()
}

/// Ends a request: drops its resource, and its CPU charge closes (with
/// its summary, where its worker is tailed).
fn finish(state: &mut OpState, rid: ResourceId) -> Option<Rc<InflightRequest>> {
  let inflight = state.resource_table.take::<InflightRequest>(rid).ok();
  if let Some(ledger) = state.try_borrow::<CpuLedger>() {
    ledger.close(rid, inflight.as_ref().and_then(|r| r.summary()));
  }
  inflight
}

/// Sends a response whose whole body is known, and ends the request.
#[op2]
pub fn op_serve_respond_static(
  state: &mut OpState,
  #[smi] rid: ResourceId,
  #[smi] status: u16,
  #[scoped] headers: Vec<(ByteString, ByteString)>,
  #[buffer] body: JsBuffer,
) -> Result<(), ServeError> {
  respond_full(state, rid, status, headers, Bytes::copy_from_slice(&body))
}

/// Sends a response whose whole body is a string, as UTF-8, and ends the
/// request: no encoding into a JS buffer first.
#[op2]
pub fn op_serve_respond_text(
  state: &mut OpState,
  #[smi] rid: ResourceId,
  #[smi] status: u16,
  #[scoped] headers: Vec<(ByteString, ByteString)>,
  #[string] body: &str,
) -> Result<(), ServeError> {
  respond_full(
    state,
    rid,
    status,
    headers,
    Bytes::copy_from_slice(body.as_bytes()),
  )
}

fn respond_full(
  state: &mut OpState,
  rid: ResourceId,
  status: u16,
  headers: Vec<(ByteString, ByteString)>,
  body: Bytes,
) -> Result<(), ServeError> {
  let (status, headers) = response_head(status, headers)?;
  let Some((inflight, reply)) = take_reply(state, rid)? else {
    finish(state, rid);
    return Ok(());
  };
  inflight.status.set(status.as_u16());
  let body = ResponseBody::Full(body);
  // A client that already left is not an error for the worker.
  reply.send(WorkerResponse {
    status,
    headers,
    body,
  });
  finish(state, rid);
  Ok(())
}

/// Accepts a WebSocket upgrade: a 101 response whose connection the host
/// pumps into the pair whose client end is `peer`.
#[op2]
pub fn op_serve_respond_websocket(
  state: &mut OpState,
  #[smi] rid: ResourceId,
  #[smi] peer: ResourceId,
  #[scoped] headers: Vec<(ByteString, ByteString)>,
) -> Result<(), ServeError> {
  let link = crate::ext::websocket::take_peer(state, peer)?;
  let (_, headers) = response_head(200, headers)?;
  let Some((inflight, reply)) = take_reply(state, rid)? else {
    finish(state, rid);
    return Ok(());
  };
  inflight.status.set(101);
  reply.send(WorkerResponse {
    status: StatusCode::SWITCHING_PROTOCOLS,
    headers,
    body: ResponseBody::WebSocket(link),
  });
  finish(state, rid);
  Ok(())
}

/// Sends a response head whose body will follow through
/// `op_serve_write_body` and `op_serve_close_body`. Returns `false` if the
/// client has already gone, so JS can skip producing the body.
#[op2]
pub fn op_serve_respond_stream(
  state: &mut OpState,
  #[smi] rid: ResourceId,
  #[smi] status: u16,
  #[scoped] headers: Vec<(ByteString, ByteString)>,
) -> Result<bool, ServeError> {
  let (status, headers) = response_head(status, headers)?;
  // An expired request's client has its 504: JS stops as for a client gone.
  let Some((inflight, reply)) = take_reply(state, rid)? else {
    return Ok(false);
  };
  inflight.status.set(status.as_u16());
  let (tx, rx) = mpsc::channel(RESPONSE_CHUNKS_BUFFERED);
  *inflight.response_body.borrow_mut() = Some(tx);
  let body = ResponseBody::Stream(rx);
  Ok(reply.send(WorkerResponse {
    status,
    headers,
    body,
  }))
}

/// Writes one chunk of a streamed response body; waits while the client is
/// slower than the worker. Resolves to `false` once the client has gone, so
/// JS can stop producing.
#[op2]
pub async fn op_serve_write_body(
  state: Rc<RefCell<OpState>>,
  #[smi] rid: ResourceId,
  #[buffer] chunk: JsBuffer,
) -> Result<bool, ServeError> {
  let sender = {
    let state = state.borrow();
    let inflight = state
      .resource_table
      .get::<InflightRequest>(rid)
      .map_err(|_| ServeError::RequestGone)?;
    inflight
      .response_body
      .borrow()
      .clone()
      .ok_or(ServeError::BodyNotOpen)?
  };
  Ok(
    sender
      .send(Ok(Bytes::copy_from_slice(&chunk)))
      .await
      .is_ok(),
  )
}

/// Ends a streamed response body.
#[op2(fast)]
pub fn op_serve_close_body(state: &mut OpState, #[smi] rid: ResourceId) {
  // Dropping the resource drops the sender, which ends the body.
  finish(state, rid);
}

/// Reports that the handler failed: logs the error with its JS stack and
/// answers 500 if no response head was sent yet. A stream already under way
/// is cut off, so the client sees a truncated body rather than a false end.
#[op2(fast)]
pub fn op_serve_fail(state: &mut OpState, #[smi] rid: ResourceId, #[string] error: &str) {
  tracing::error!(target: "outpost::worker", "uncaught exception in a handler: {error}");
  let message = format!("Uncaught exception: {error}");
  crate::ext::worker::to_sink(
    state,
    crate::ext::worker::LogLevel::Error,
    &message,
    Some(rid),
  );
  if let Ok(inflight) = state.resource_table.get::<InflightRequest>(rid) {
    inflight.ends(500, "exception");
  }
  let Some(inflight) = finish(state, rid) else {
    return;
  };
  if let Some(reply) = inflight.reply.borrow_mut().take() {
    let _ = reply.send(WorkerResponse::text(
      StatusCode::INTERNAL_SERVER_ERROR,
      "Internal Server Error: the worker threw an exception.\n",
    ));
  } else if let Some(body) = inflight.response_body.borrow_mut().take() {
    let _ = body.try_send(Err(BodyError::Transport(
      "the worker failed mid-stream".into(),
    )));
  }
}

/// Answers every request in flight in this isolate with `response()`: used
/// when the isolate is being discarded. A response already streaming is cut
/// off instead.
pub fn answer_all(
  state: &mut OpState,
  outcome: &'static str,
  response: impl Fn() -> WorkerResponse,
) {
  let inflight: Vec<ResourceId> = state
    .resource_table
    .names()
    .filter(|(_, name)| name == "outpostInflightRequest")
    .map(|(rid, _)| rid)
    .collect();
  let status = response().status.as_u16();
  for rid in inflight {
    if let Ok(request) = state.resource_table.get::<InflightRequest>(rid) {
      request.ends(status, outcome);
    }
    let Some(request) = finish(state, rid) else {
      continue;
    };
    if let Some(reply) = request.reply.borrow_mut().take() {
      let _ = reply.send(response());
    } else if let Some(body) = request.response_body.borrow_mut().take() {
      let _ = body.try_send(Err(BodyError::Transport(
        "the worker was stopped mid-stream".into(),
      )));
    }
  }
}
