//! The `service` area: service bindings (`[[services]]`), a worker's
//! `env.AUTH.fetch()` to another worker on the same node, with no network
//! hop.
//!
//! The JS (`js-api/src/service/10_service.js`) sends the request through
//! `fetch()`, so deno_fetch's Request handling, bodies and abort apply and
//! it counts as a subrequest; a header of its own marks it for a service
//! and names the calling request. The header carries the isolate's secret
//! token, which worker code cannot read, so a client or a worker that sets
//! the header itself sends a plain fetch. The fetch op hands it here: it becomes a
//! [`WorkerRequest`] for the embedder's [`ServiceFetcher`], which runs it
//! on the bound worker (the callee's CPU is the callee's), and the
//! [`WorkerResponse`] streams back as the fetch's response. The callee's
//! request carries the caller's `cf-ray`, so both workers' log lines and
//! tails name the same ray.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use deno_core::convert::{ByteString, Uint8Array};
use deno_core::url::Url;
use deno_core::{CancelFuture, CancelHandle, OpState, ResourceId, op2};
use deno_core::{JsBuffer, ToJsBuffer};
use deno_error::JsErrorBox;
use deno_fetch::{FetchError, FetchReturn, ResBody};
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use crate::ext::serve::{BodyError, RequestBody, ResponseBody, WorkerRequest, WorkerResponse};

/// The header the JS puts on a service binding's request: the binding's
/// name, the calling request's resource id and the isolate's
/// [`MarkerToken`]. Taken off before the callee sees the request.
pub const SERVICE_HEADER: &str = "x-outpost-service-binding";

/// How many service calls deep a request may go (a worker bound to itself
/// recurses): the callee sees its depth in this header.
pub const DEPTH_HEADER: &str = "x-outpost-service-depth";

/// The most service hops below one incoming request.
pub const MAX_DEPTH: u8 = 16;

/// How many request chunks may wait for the callee.
const CHUNKS_BUFFERED: usize = 8;

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

/// Why a service binding's request could not be made.
#[derive(Debug, thiserror::Error, deno_error::JsError)]
pub enum ServiceError {
  /// The marker header is not the JS's.
  #[class(type)]
  #[error("malformed service binding request")]
  Malformed,
  /// The worker has no binding of that name.
  #[class(type)]
  #[error("the worker has no service binding named {0:?}")]
  Unbound(String),
  /// Service calls nested too deep.
  #[class(range)]
  #[error("service bindings nested more than {MAX_DEPTH} deep")]
  TooDeep,
  /// The bound worker could not answer an RPC call.
  #[class(type)]
  #[error("{0}")]
  Call(String),
  /// deno_fetch refused the request (bad header or body).
  #[class(inherit)]
  #[error(transparent)]
  Fetch(Box<FetchError>),
}

impl From<FetchError> for ServiceError {
  fn from(err: FetchError) -> Self {
    Self::Fetch(Box::new(err))
  }
}

/// The isolate's secret for [`SERVICE_HEADER`], made on first use.
struct MarkerToken(String);

/// The isolate's marker token, for the service binding JS only: worker
/// code runs without access to ops.
#[op2]
#[string]
pub fn op_service_token(state: &mut OpState) -> String {
  if let Some(token) = state.try_borrow::<MarkerToken>() {
    return token.0.clone();
  }
  let mut bytes = [0u8; 16];
  // A failed draw leaves a token nobody can match rather than a known one.
  let token = match aws_lc_rs::rand::fill(&mut bytes) {
    Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    Err(_) => "\u{0}unusable".to_owned(),
  };
  state.put(MarkerToken(token.clone()));
  token
}

/// A service binding's call, as its marker header names it.
pub(crate) struct Call {
  /// The binding.
  binding: String,
  /// The calling request.
  caller: ResourceId,
  /// For RPC, the entrypoint method (percent-encoded by the JS).
  rpc: Option<String>,
}

/// Takes the service marker off `headers` (`binding rid token [method]`),
/// or `None` for a plain fetch: no marker, or one without this isolate's
/// token, which is left as it is.
pub(crate) fn take_marker(
  state: &OpState,
  headers: &mut Vec<(ByteString, ByteString)>,
) -> Option<Result<Call, ServiceError>> {
  let token = state.try_borrow::<MarkerToken>()?.0.as_bytes();
  let at = headers.iter().position(|(name, value)| {
    name.eq_ignore_ascii_case(SERVICE_HEADER.as_bytes())
      && value.split(|b| *b == b' ').nth(2) == Some(token)
  })?;
  let (_, value) = headers.remove(at);
  let mut parts = std::str::from_utf8(&value).ok()?.split(' ');
  let call = match (parts.next(), parts.next().map(str::parse), parts.nth(1)) {
    (Some(binding), Some(Ok(caller)), rpc) => Ok(Call {
      binding: binding.to_owned(),
      caller,
      rpc: rpc.map(str::to_owned),
    }),
    _ => Err(ServiceError::Malformed),
  };
  Some(call)
}

/// The request body for the callee: the JS's bytes, or its stream pumped
/// from the calling isolate's thread.
fn body_for_callee(
  state: &mut OpState,
  data: Option<Uint8Array>,
  resource: Option<ResourceId>,
) -> Result<RequestBody, ServiceError> {
  let (tx, rx) = mpsc::channel(CHUNKS_BUFFERED);
  if let Some(data) = data {
    let _ = tx.try_send(Ok(Bytes::from(data.0)));
    return Ok(RequestBody::Stream(rx));
  }
  let Some(rid) = resource else {
    return Ok(RequestBody::Empty);
  };
  let resource = state
    .resource_table
    .take_any(rid)
    .map_err(FetchError::from)?;
  let mut stream = deno_fetch::ResourceToBodyAdapter::new(resource);
  tokio::task::spawn_local(async move {
    while let Some(chunk) = stream.next().await {
      let chunk = chunk.map_err(|err| BodyError::Transport(err.to_string()));
      let failed = chunk.is_err();
      if tx.send(chunk).await.is_err() || failed {
        return;
      }
    }
  });
  Ok(RequestBody::Stream(rx))
}

/// The callee's response as a fetch response.
fn to_fetch_response(response: WorkerResponse) -> Result<http::Response<ResBody>, Box<FetchError>> {
  let body: ResBody = match response.body {
    ResponseBody::Full(bytes) => http_body_util::Full::new(bytes)
      .map_err(|never| match never {})
      .boxed(),
    ResponseBody::Stream(rx) => {
      let frames = futures::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        let frame = chunk
          .map(http_body::Frame::data)
          .map_err(|err| JsErrorBox::type_error(format!("the service's body failed: {err}")));
        Some((frame, rx))
      });
      BodyExt::boxed(http_body_util::StreamBody::new(frames))
    }
    ResponseBody::WebSocket(_) => {
      return Err(Box::new(FetchError::Other(JsErrorBox::type_error(
        "a WebSocket from a service binding is not supported",
      ))));
    }
  };
  let mut out = http::Response::new(body);
  *out.status_mut() = response.status;
  *out.headers_mut() = response.headers;
  Ok(out)
}

/// A service binding's request, from the fetch op: run on the bound worker
/// through the isolate's [`ServiceBindings`]; answered as deno_fetch's JS
/// expects of `op_fetch`.
#[allow(clippy::too_many_arguments, reason = "the parts of op_fetch's request")]
pub(crate) fn fetch(
  state: &mut OpState,
  Call {
    binding,
    caller,
    rpc,
  }: Call,
  method: Method,
  url: Url,
  headers: Vec<(ByteString, ByteString)>,
  has_body: bool,
  data: Option<Uint8Array>,
  resource: Option<ResourceId>,
) -> Result<FetchReturn, ServiceError> {
  let bindings = state
    .try_borrow::<ServiceBindings>()
    .filter(|bindings| bindings.names.contains(&binding))
    .cloned()
    .ok_or_else(|| ServiceError::Unbound(binding.clone()))?;
  let mut sent = callee_headers(state, caller)?;
  for (name, value) in headers {
    let name = HeaderName::from_bytes(&name).map_err(FetchError::from)?;
    let value = HeaderValue::from_bytes(&value).map_err(FetchError::from)?;
    // The host's own headers stay the host's.
    if name != "cf-ray" && name != DEPTH_HEADER {
      sent.append(name, value);
    }
  }
  let body = match has_body {
    true => body_for_callee(state, data, resource)?,
    false => RequestBody::Empty,
  };
  let request = WorkerRequest {
    method,
    url: url.to_string(),
    headers: sent,
    body,
    cf: None,
    scheduled: None,
    rpc,
    // The embedder's to set, from the binding.
    entrypoint: None,
  };
  let cancel = CancelHandle::new_rc();
  let answer = bindings.fetcher.fetch(&binding, request);
  let future = {
    let cancel = cancel.clone();
    async move {
      let answered = answer.or_cancel(cancel).await?;
      // deno_fetch's JS takes a FetchError, however large.
      let outcome = match answered {
        Ok(response) => to_fetch_response(response),
        Err(why) => Err(Box::new(FetchError::Other(JsErrorBox::type_error(
          format!("service binding {binding}: {why}"),
        )))),
      };
      Ok(outcome.map_err(|err| *err))
    }
  };
  Ok(crate::ext::fetch::pending_fetch(
    state,
    Box::pin(future),
    url,
    cancel,
  ))
}

/// The headers of a request made for the calling request `caller`: its
/// `cf-ray`, and the service depth one below it; `TooDeep` past the limit.
fn callee_headers(state: &OpState, caller: ResourceId) -> Result<HeaderMap, ServiceError> {
  let depth = crate::ext::serve::service_depth_of(state, caller) + 1;
  if depth > MAX_DEPTH {
    return Err(ServiceError::TooDeep);
  }
  let mut headers = HeaderMap::new();
  if let Some(ray) =
    crate::ext::serve::ray_of(state, caller).and_then(|ray| HeaderValue::from_str(&ray).ok())
  {
    headers.insert("cf-ray", ray);
  }
  headers.insert(DEPTH_HEADER, HeaderValue::from(u16::from(depth)));
  Ok(headers)
}

/// The header with which a callee marks an RPC answer that is an error.
const RPC_ERROR_HEADER: &str = "x-outpost-rpc";

/// Calls method `method` of the entrypoint bound as `binding` with `args`
/// (V8-serialized) for the calling request `caller`: the direct path the
/// RPC stubs take, with no Request or Response on this side. Returns
/// whether the method threw, and its result or error, serialized.
#[op2]
#[serde]
pub async fn op_service_rpc(
  state: Rc<RefCell<OpState>>,
  #[string] binding: String,
  #[smi] caller: ResourceId,
  #[string] method: String,
  #[buffer] args: JsBuffer,
) -> Result<(bool, ToJsBuffer), ServiceError> {
  let (fetcher, headers) = {
    let state = state.borrow();
    let fetcher = state
      .try_borrow::<ServiceBindings>()
      .filter(|bindings| bindings.names.contains(&binding))
      .map(|bindings| bindings.fetcher.clone())
      .ok_or_else(|| ServiceError::Unbound(binding.clone()))?;
    (fetcher, callee_headers(&state, caller)?)
  };
  let (tx, rx) = mpsc::channel(1);
  let _ = tx.try_send(Ok(Bytes::copy_from_slice(&args)));
  // Closed, so the callee sees the end of the arguments.
  drop(tx);
  let request = WorkerRequest {
    method: Method::POST,
    url: "http://rpc.invalid/".to_owned(),
    headers,
    body: RequestBody::Stream(rx),
    cf: None,
    scheduled: None,
    rpc: Some(method),
    entrypoint: None,
  };
  let failed = |why: String| ServiceError::Call(format!("service binding {binding}: {why}"));
  let response = fetcher.fetch(&binding, request).await.map_err(&failed)?;
  let threw = response.headers.contains_key(RPC_ERROR_HEADER);
  let body = match response.body {
    ResponseBody::Full(bytes) => bytes.to_vec(),
    ResponseBody::Stream(mut rx) => {
      let mut body = Vec::new();
      while let Some(chunk) = rx.recv().await {
        body.extend_from_slice(&chunk.map_err(|err| failed(err.to_string()))?);
      }
      body
    }
    ResponseBody::WebSocket(_) => return Err(failed("answered with a WebSocket".into())),
  };
  // Anything but the callee's serialized answer (a limit's 503, say).
  if !response.status.is_success() && !threw {
    return Err(failed(format!(
      "the worker answered {} instead of a result",
      response.status
    )));
  }
  Ok((threw, body.into()))
}

deno_core::extension!(
  outpost_service,
  deps = [deno_web, deno_fetch, outpost_fetch],
  ops = [op_service_token, op_service_rpc],
  esm = [
    dir "../js-api/src",
    "ext:outpost_service/10_service.js" = "service/10_service.js",
  ],
);
