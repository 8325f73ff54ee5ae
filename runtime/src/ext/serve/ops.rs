//! `op_serve_*`: the ops the JS dispatch loop uses to take requests and send
//! responses.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use deno_core::convert::ByteString;
use deno_core::{
  AsyncRefCell, JsBuffer, OpState, RcRef, Resource, ResourceId, ToJsBuffer, ToV8, op2,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::sync::{mpsc, oneshot};

use super::types::{BodyError, RequestBody, ResponseBody, ServeRequest, WorkerResponse};
use super::{CpuLedger, RequestQueue, ServeError};

/// How many response chunks may wait for the client before JS is paused.
const RESPONSE_CHUNKS_BUFFERED: usize = 8;

/// One request between its arrival in JS and the end of its response.
struct InflightRequest {
  body: AsyncRefCell<Option<mpsc::Receiver<Result<Bytes, BodyError>>>>,
  reply: RefCell<Option<oneshot::Sender<WorkerResponse>>>,
  response_body: RefCell<Option<mpsc::Sender<Result<Bytes, BodyError>>>>,
}

impl Resource for InflightRequest {
  fn name(&self) -> std::borrow::Cow<'_, str> {
    "outpostInflightRequest".into()
  }
}

/// The head of a request, as JS receives it.
#[derive(ToV8)]
pub struct RequestHead {
  rid: ResourceId,
  method: String,
  url: String,
  headers: Vec<(ByteString, ByteString)>,
  has_body: bool,
}

/// Most requests handed to JS in one batch, so one isolate's burst cannot
/// starve the executor's other tasks.
const MAX_BATCH: usize = 64;

/// Waits for requests and returns every one already queued (up to
/// [`MAX_BATCH`]), so a burst is handled in one turn of the event loop
/// rather than one request per turn. Resolves to `null` once the worker is
/// retired and no more requests will come.
#[op2]
pub async fn op_serve_next_requests(
  state: Rc<RefCell<OpState>>,
) -> Result<Option<Vec<RequestHead>>, ServeError> {
  let queue = state.borrow().borrow::<RequestQueue>().clone();
  let mut rx = queue.0.borrow_mut().take().ok_or(ServeError::QueueBusy)?;
  let first = rx.recv().await;
  let mut batch = Vec::new();
  if let Some(first) = first {
    batch.push(first);
    while batch.len() < MAX_BATCH {
      match rx.try_recv() {
        Ok(next) => batch.push(next),
        Err(_) => break,
      }
    }
  }
  *queue.0.borrow_mut() = Some(rx);
  if batch.is_empty() {
    return Ok(None);
  }
  let mut state = state.borrow_mut();
  Ok(Some(
    batch
      .into_iter()
      .map(|serve| accept(&mut state, serve))
      .collect(),
  ))
}

/// Registers a request as in flight and describes its head for JS.
fn accept(state: &mut OpState, serve: ServeRequest) -> RequestHead {
  let request = serve.request;
  let headers = request
    .headers
    .iter()
    .map(|(name, value)| {
      (
        ByteString::from(name.as_str()),
        ByteString::from(value.as_bytes()),
      )
    })
    .collect();
  let (body, has_body) = match request.body {
    RequestBody::Empty => (None, false),
    RequestBody::Stream(rx) => (Some(rx), true),
  };
  let rid = state.resource_table.add(InflightRequest {
    body: AsyncRefCell::new(body),
    reply: RefCell::new(Some(serve.reply)),
    response_body: RefCell::new(None),
  });
  if let Some(ledger) = state.try_borrow::<CpuLedger>() {
    ledger.open(rid);
  }
  RequestHead {
    rid,
    method: request.method.as_str().to_owned(),
    url: request.url,
    headers,
    has_body,
  }
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
    map.append(name, value);
  }
  Ok((status, map))
}

fn take_reply(
  state: &mut OpState,
  rid: ResourceId,
) -> Result<(Rc<InflightRequest>, oneshot::Sender<WorkerResponse>), ServeError> {
  let inflight = state
    .resource_table
    .get::<InflightRequest>(rid)
    .map_err(|_| ServeError::RequestGone)?;
  let reply = inflight
    .reply
    .borrow_mut()
    .take()
    .ok_or(ServeError::RequestGone)?;
  Ok((inflight, reply))
}

/// Ends a request: drops its resource, and its CPU charge closes.
fn finish(state: &mut OpState, rid: ResourceId) -> Option<Rc<InflightRequest>> {
  if let Some(ledger) = state.try_borrow::<CpuLedger>() {
    ledger.close(rid);
  }
  state.resource_table.take::<InflightRequest>(rid).ok()
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
  let (status, headers) = response_head(status, headers)?;
  let (_, reply) = take_reply(state, rid)?;
  let body = ResponseBody::Full(Bytes::copy_from_slice(&body));
  // A client that already left is not an error for the worker.
  let _ = reply.send(WorkerResponse {
    status,
    headers,
    body,
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
  let (inflight, reply) = take_reply(state, rid)?;
  let (tx, rx) = mpsc::channel(RESPONSE_CHUNKS_BUFFERED);
  *inflight.response_body.borrow_mut() = Some(tx);
  let body = ResponseBody::Stream(rx);
  Ok(
    reply
      .send(WorkerResponse {
        status,
        headers,
        body,
      })
      .is_ok(),
  )
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
  tracing::error!(target: "outpost::worker", "uncaught exception in fetch handler: {error}");
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

/// Answers every request this isolate holds, in flight or still queued,
/// with `response()`: used when the isolate is being discarded. A response
/// already streaming is cut off instead.
pub fn answer_all(state: &mut OpState, response: impl Fn() -> WorkerResponse) {
  let inflight: Vec<ResourceId> = state
    .resource_table
    .names()
    .filter(|(_, name)| name == "outpostInflightRequest")
    .map(|(rid, _)| rid)
    .collect();
  for rid in inflight {
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
  let queue = state.borrow::<RequestQueue>().clone();
  if let Some(rx) = queue.0.borrow_mut().as_mut() {
    while let Ok(queued) = rx.try_recv() {
      let _ = queued.reply.send(response());
    }
  }
}
