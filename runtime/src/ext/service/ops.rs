//! The two calls a service binding's stubs make: a request (`fetch()`) and
//! an entrypoint method (RPC). A dispatch namespace's stubs make the same
//! two, naming a user worker and the call's limits.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use deno_core::{JsBuffer, OpState, ResourceId, ToJsBuffer, op2};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use tokio::sync::mpsc;

use super::body::{self, ResponseStream};
use super::{
  DEPTH_HEADER, MAX_DEPTH, ServiceBindings, ServiceError, ServiceFailure, ServiceFetcher,
  ServiceTarget,
};
use crate::ext::serve::{CallLimits, RequestBody, ResponseBody, WorkerRequest, WorkerResponse};

/// The header with which a callee marks an RPC answer that is an error
/// (`error`) or a stream (`stream`).
const RPC_ERROR_HEADER: &str = "x-outpost-rpc";

/// The header that tells a callee which RPC argument is a ReadableStream:
/// its body is then the serialized arguments behind their length (4 bytes,
/// big-endian), followed by the stream's bytes.
const RPC_STREAM_ARGUMENT_HEADER: &str = "x-outpost-rpc-stream";

/// One call as a stub names it: the binding, for a dispatch namespace the
/// user worker, and the limits the dispatcher set on it.
struct Call {
  binding: String,
  worker: Option<String>,
  limits: CallLimits,
}

impl Call {
  /// From the stub's arguments: `target` is the binding, or for a user
  /// worker of a dispatch namespace `<binding>/<worker>` (no binding name
  /// holds a `/`); a limit below 0 is none.
  fn new(target: String, cpu_ms: i32, subrequests: i32) -> Self {
    let limits = CallLimits {
      cpu: u64::try_from(cpu_ms)
        .ok()
        .map(std::time::Duration::from_millis),
      subrequests: u32::try_from(subrequests).ok(),
    };
    let (binding, worker) = match target.split_once('/') {
      Some((binding, worker)) => (binding.to_owned(), Some(worker.to_owned())),
      None => (target, None),
    };
    Self {
      binding,
      worker,
      limits,
    }
  }

  fn target(&self) -> ServiceTarget<'_> {
    ServiceTarget {
      binding: &self.binding,
      worker: self.worker.as_deref(),
    }
  }

  /// The op's error for what the embedder reported.
  fn failed(&self, failure: ServiceFailure) -> ServiceError {
    match (failure, &self.worker) {
      (ServiceFailure::NoSuchWorker, Some(worker)) => ServiceError::NoSuchWorker {
        binding: self.binding.clone(),
        worker: worker.clone(),
      },
      (ServiceFailure::NoSuchWorker, None) => self.failed_because("no such worker".into()),
      (ServiceFailure::Failed(why), _) => self.failed_because(why),
    }
  }

  fn failed_because(&self, why: String) -> ServiceError {
    ServiceError::Call {
      binding: self.binding.clone(),
      why,
    }
  }

  /// A user worker's answer cut short by a limit is thrown in the
  /// dispatcher, as Workers does; a service binding's caller gets the
  /// answer (503) as it is.
  fn check_limits(&self, response: &WorkerResponse) -> Result<(), ServiceError> {
    let Some(worker) = &self.worker else {
      return Ok(());
    };
    // `Termination::code`s; workers cannot set this header themselves.
    let limit = match response.headers.get("outpost-error").map(|v| v.as_bytes()) {
      Some(b"cpu-limit") => "CPU time limit",
      Some(b"memory-limit") => "memory limit",
      _ => return Ok(()),
    };
    Err(ServiceError::Exceeded {
      worker: worker.clone(),
      limit,
    })
  }
}

/// What runs `call`, and the host's headers for a request made for the
/// calling request `caller`: its `cf-ray`, and the service depth one below
/// it (`TooDeep` past the limit).
fn prepare(
  state: &OpState,
  call: &Call,
  caller: ResourceId,
) -> Result<(Arc<dyn ServiceFetcher>, HeaderMap), ServiceError> {
  let binding = call.binding.as_str();
  let fetcher = state
    .try_borrow::<ServiceBindings>()
    .filter(|bindings| match call.worker {
      None => bindings.names.iter().any(|name| name == binding),
      Some(_) => bindings.namespaces.iter().any(|name| name == binding),
    })
    .map(|bindings| bindings.fetcher.clone())
    .ok_or_else(|| ServiceError::Unbound(binding.to_owned()))?;
  let depth = crate::ext::serve::service_depth_of(state, caller) + 1;
  if depth > MAX_DEPTH {
    return Err(ServiceError::TooDeep);
  }
  let mut headers = HeaderMap::new();
  if let Some(ray) = crate::ext::serve::ray_header_of(state, caller) {
    headers.insert("cf-ray", ray);
  }
  headers.insert(DEPTH_HEADER, HeaderValue::from(u16::from(depth)));
  Ok((fetcher, headers))
}

/// The callee's answer to a `fetch()`, for JS: status, headers as
/// `name\nvalue` lines (cheaper for V8 than an array of pairs), then a
/// body known in full as bytes or a streamed one as a resource to read.
type FetchAnswer = (u16, String, Option<ToJsBuffer>, Option<ResourceId>);

/// `headers` as `name\nvalue` pairs joined by `\n`; neither can hold a
/// newline.
fn header_text(headers: &HeaderMap) -> String {
  let mut text = String::new();
  for (name, value) in headers {
    if !text.is_empty() {
      text.push('\n');
    }
    text.push_str(name.as_str());
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(value.as_bytes()));
  }
  text
}

/// Sends `method url` with `headers` and the body in resource `body` (a
/// ReadableStream JS made into one) to the worker `target` names (see
/// [`Call::new`]) under the call's limits, for the calling request
/// `caller`.
#[op2]
#[serde]
#[allow(
  clippy::too_many_arguments,
  reason = "one op argument per part of the call"
)]
pub async fn op_service_fetch(
  state: Rc<RefCell<OpState>>,
  #[string] target: String,
  #[smi] cpu_ms: i32,
  #[smi] subrequests: i32,
  #[smi] caller: ResourceId,
  #[string] method: String,
  #[string] url: String,
  #[string] headers: String,
  #[smi] body: Option<ResourceId>,
) -> Result<FetchAnswer, ServiceError> {
  let call = Call::new(target, cpu_ms, subrequests);
  let (fetcher, mut sent, body) = {
    let mut state = state.borrow_mut();
    let (fetcher, sent) = prepare(&state, &call, caller)?;
    let body = match body {
      Some(rid) => {
        let resource = state
          .resource_table
          .take_any(rid)
          .map_err(|err| ServiceError::Body(err.to_string()))?;
        body::from_resource(resource, None)
      }
      None => RequestBody::Empty,
    };
    (fetcher, sent, body)
  };
  let mut lines = headers.split('\n');
  while let (Some(name), Some(value)) = (lines.next(), lines.next()) {
    let name = HeaderName::from_bytes(name.as_bytes())
      .map_err(|err| ServiceError::Header(err.to_string()))?;
    let value = HeaderValue::from_bytes(value.as_bytes())
      .map_err(|err| ServiceError::Header(err.to_string()))?;
    // The host's own headers stay the host's.
    if name != "cf-ray" && name != DEPTH_HEADER {
      sent.append(name, value);
    }
  }
  let method =
    Method::from_bytes(method.as_bytes()).map_err(|err| ServiceError::Header(err.to_string()))?;
  let request = WorkerRequest {
    method,
    url,
    headers: sent,
    body,
    cf: None,
    scheduled: None,
    rpc: None,
    // The embedder's to set, from the binding.
    entrypoint: None,
    limits: call.limits,
  };
  let response = fetcher
    .fetch(call.target(), request)
    .await
    .map_err(|failure| call.failed(failure))?;
  call.check_limits(&response)?;
  let WorkerResponse {
    status,
    headers,
    body,
  } = response;
  let headers = header_text(&headers);
  let (body, stream) = match body {
    ResponseBody::Full(bytes) => (Some(bytes.to_vec().into()), None),
    ResponseBody::Stream(rx) => {
      let rid = stream_resource(&state, rx);
      (None, Some(rid))
    }
    ResponseBody::WebSocket(_) => {
      return Err(
        call.failed_because("a WebSocket from a service binding is not supported".into()),
      );
    }
  };
  Ok((status.as_u16(), headers, body, stream))
}

/// Registers a callee's streamed body for the caller's JS to read.
fn stream_resource(
  state: &Rc<RefCell<OpState>>,
  rx: mpsc::Receiver<Result<Bytes, crate::ext::serve::BodyError>>,
) -> ResourceId {
  state
    .borrow_mut()
    .resource_table
    .add(ResponseStream::new(rx))
}

/// What an RPC call gave, for JS: a value (serialized), an error it threw
/// (serialized), or a ReadableStream (a resource to read).
type RpcAnswer = (u8, Option<ToJsBuffer>, Option<ResourceId>);

/// [`RpcAnswer`]'s kinds.
const RPC_VALUE: u8 = 0;
const RPC_THREW: u8 = 1;
const RPC_STREAM: u8 = 2;

/// Calls method `method` of the entrypoint of the worker `target` names
/// (see [`Call::new`]) under the call's limits, with `args`
/// (V8-serialized), for the calling request `caller`. Argument
/// `stream_at`, if not -1, is the ReadableStream in resource `stream`, sent
/// after the others (`null` in `args`).
#[op2]
#[serde]
#[allow(
  clippy::too_many_arguments,
  reason = "one op argument per part of the call"
)]
pub async fn op_service_rpc(
  state: Rc<RefCell<OpState>>,
  #[string] target: String,
  #[smi] cpu_ms: i32,
  #[smi] subrequests: i32,
  #[smi] caller: ResourceId,
  #[string] method: String,
  #[buffer] args: JsBuffer,
  #[smi] stream: i32,
  #[smi] stream_at: i32,
) -> Result<RpcAnswer, ServiceError> {
  let call = Call::new(target, cpu_ms, subrequests);
  let (fetcher, mut headers) = prepare(&state.borrow(), &call, caller)?;
  let body = match ResourceId::try_from(stream).ok() {
    None => {
      let (tx, rx) = mpsc::channel(1);
      let _ = tx.try_send(Ok(Bytes::copy_from_slice(&args)));
      // Closed, so the callee sees the end of the arguments.
      drop(tx);
      RequestBody::Stream(rx)
    }
    Some(rid) => {
      let resource = state
        .borrow_mut()
        .resource_table
        .take_any(rid)
        .map_err(|err| ServiceError::Body(err.to_string()))?;
      let length = u32::try_from(args.len())
        .map_err(|_| call.failed_because("the arguments are too large".into()))?;
      let mut first = Vec::with_capacity(4 + args.len());
      first.extend_from_slice(&length.to_be_bytes());
      first.extend_from_slice(&args);
      headers.insert(RPC_STREAM_ARGUMENT_HEADER, HeaderValue::from(stream_at));
      body::from_resource(resource, Some(first.into()))
    }
  };
  let request = WorkerRequest {
    method: Method::POST,
    url: "http://rpc.invalid/".to_owned(),
    headers,
    body,
    cf: None,
    scheduled: None,
    rpc: Some(method),
    entrypoint: None,
    limits: call.limits,
  };
  let failed = |why: String| call.failed_because(why);
  let response = fetcher
    .fetch(call.target(), request)
    .await
    .map_err(|failure| call.failed(failure))?;
  call.check_limits(&response)?;
  let kind = match response.headers.get(RPC_ERROR_HEADER).map(|v| v.as_bytes()) {
    Some(b"error") => RPC_THREW,
    Some(b"stream") => RPC_STREAM,
    _ => RPC_VALUE,
  };
  // Anything but the callee's answer (a limit's 503, say).
  if !response.status.is_success() && kind != RPC_THREW {
    return Err(failed(format!(
      "the worker answered {} instead of a result",
      response.status
    )));
  }
  match (kind, response.body) {
    (RPC_STREAM, ResponseBody::Stream(rx)) => {
      let rid = stream_resource(&state, rx);
      Ok((RPC_STREAM, None, Some(rid)))
    }
    (RPC_STREAM, ResponseBody::Full(bytes)) => {
      // A stream the callee had fully read already.
      let (tx, rx) = mpsc::channel(1);
      let _ = tx.try_send(Ok(bytes));
      drop(tx);
      let rid = stream_resource(&state, rx);
      Ok((RPC_STREAM, None, Some(rid)))
    }
    (kind, ResponseBody::Full(bytes)) => Ok((kind, Some(bytes.to_vec().into()), None)),
    (kind, ResponseBody::Stream(mut rx)) => {
      let mut body = Vec::new();
      while let Some(chunk) = rx.recv().await {
        body.extend_from_slice(&chunk.map_err(|err| failed(err.to_string()))?);
      }
      Ok((kind, Some(body.into()), None))
    }
    (_, ResponseBody::WebSocket(_)) => Err(failed("answered with a WebSocket".into())),
  }
}
