//! `op_fetch_checked`, which stands in for deno_fetch's `op_fetch`, and the
//! per-isolate outbound settings it reads.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use deno_core::convert::{ByteString, Uint8Array};
use deno_core::url::{Host, Url};
use deno_core::{CancelFuture, CancelHandle, OpState, ResourceId, op2};
use deno_error::JsErrorBox;
use deno_fetch::{
  Client, FetchCancelHandle, FetchError, FetchRequestResource, FetchReturn, ReqBody,
  ResourceToBodyAdapter,
};
use http::header::{AUTHORIZATION, CONTENT_LENGTH, HOST};
use http::{HeaderName, HeaderValue, Method, Uri};

use super::client::{self, ResolvedRefusal};
use super::error::OutboundError;
use super::policy::OutboundPolicy;

/// What an isolate's outbound requests run under; the worker's start puts
/// it in the isolate's `OpState`.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
  /// Which addresses may be reached.
  pub policy: Arc<OutboundPolicy>,
  /// `fetch()` calls one incoming request may make.
  pub max_subrequests: u32,
  /// How long a subrequest may wait for its response head.
  pub timeout: Duration,
}

impl Default for OutboundConfig {
  fn default() -> Self {
    Self {
      policy: Arc::default(),
      max_subrequests: 50,
      timeout: Duration::from_secs(30),
    }
  }
}

/// The isolate's outbound settings (the defaults if none were set).
pub fn config(state: &OpState) -> OutboundConfig {
  state
    .try_borrow::<OutboundConfig>()
    .cloned()
    .unwrap_or_default()
}

/// The isolate's client, created on its first outbound request.
fn client(state: &mut OpState, policy: Arc<OutboundPolicy>) -> Result<Client, OutboundError> {
  if let Some(client) = state.try_borrow::<Client>() {
    return Ok(client.clone());
  }
  let client = client::create(policy).map_err(FetchError::from)?;
  state.put(client.clone());
  Ok(client)
}

/// The subrequests incoming request `rid` may make: the worker's limit,
/// or its caller's if that is lower.
#[op2(fast)]
pub fn op_fetch_subrequest_limit(state: &mut OpState, #[smi] rid: ResourceId) -> u32 {
  let own = config(state).max_subrequests;
  crate::ext::serve::subrequest_limit_of(state, rid).map_or(own, |call| call.min(own))
}

/// Checks a URL's host before anything is sent: IP literals against the
/// policy here, since the connector reaches them without asking the
/// resolver; host names are checked by the resolver, on the addresses
/// actually connected to.
fn check_host(url: &Url, policy: &OutboundPolicy) -> Result<(), OutboundError> {
  let ip = match url.host() {
    Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
    Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
    _ => return Ok(()),
  };
  policy
    .check_ip(ip)
    .map_err(|refusal| OutboundError::Refused {
      url: url.to_string(),
      why: refusal.to_string(),
    })
}

/// deno_fetch's `op_fetch`, with the worker's address policy, a timeout,
/// and no file URLs or custom clients. Same arguments and result, so
/// deno_fetch's JS (redirects, bodies, abort) runs unchanged and calls it
/// once per hop.
#[op2]
#[allow(
  clippy::too_many_arguments,
  reason = "the signature of deno_fetch's op_fetch"
)]
pub fn op_fetch_checked(
  state: &mut OpState,
  #[scoped] method: ByteString,
  #[string] url: String,
  #[scoped] headers: Vec<(ByteString, ByteString)>,
  #[smi] client_rid: Option<u32>,
  has_body: bool,
  data: Option<Uint8Array>,
  #[smi] resource: Option<ResourceId>,
) -> Result<FetchReturn, OutboundError> {
  if client_rid.is_some() {
    return Err(OutboundError::CustomClient);
  }
  let method = Method::from_bytes(&method).map_err(FetchError::from)?;
  let mut url = Url::parse(&url).map_err(FetchError::from)?;
  match url.scheme() {
    "http" | "https" => {}
    "data" => return data_url(state, url),
    "blob" => return Err(FetchError::BlobNotFound.into()),
    other => return Err(OutboundError::Scheme(other.to_owned())),
  }
  let OutboundConfig {
    policy, timeout, ..
  } = config(state);
  let credentials = deno_fetch::extract_authority(&mut url);
  check_host(&url, &policy)?;
  let uri = url
    .as_str()
    .parse::<Uri>()
    .map_err(|_| FetchError::InvalidUrl(url.clone()))?;

  let mut content_length = None;
  let body = match (has_body, data, resource) {
    (true, Some(data), _) => {
      content_length = Some(data.len() as u64);
      ReqBody::full(data.0.into())
    }
    (true, None, Some(rid)) => {
      let resource = state
        .resource_table
        .take_any(rid)
        .map_err(FetchError::from)?;
      if let (size, Some(upper)) = resource.size_hint()
        && size == upper
        && size > 0
      {
        content_length = Some(size);
      }
      ReqBody::streaming(ResourceToBodyAdapter::new(resource))
    }
    _ => {
      // The Fetch standard sends `content-length: 0` on a bodiless POST or PUT.
      if matches!(method, Method::POST | Method::PUT) {
        content_length = Some(0);
      }
      ReqBody::empty()
    }
  };

  let mut request = http::Request::new(body);
  *request.method_mut() = method;
  *request.uri_mut() = uri;
  let sent_headers = request.headers_mut();
  if let Some((user, password)) = credentials {
    sent_headers.insert(
      AUTHORIZATION,
      deno_fetch::basic_auth(&user, password.as_deref()),
    );
  }
  if let Some(length) = content_length {
    sent_headers.insert(CONTENT_LENGTH, length.into());
  }
  for (name, value) in headers {
    let name = HeaderName::from_bytes(&name).map_err(FetchError::from)?;
    let value = HeaderValue::from_bytes(&value).map_err(FetchError::from)?;
    // The host comes from the URL, and the length from the body.
    if name != HOST && name != CONTENT_LENGTH {
      sent_headers.append(name, value);
    }
  }

  let client = client(state, policy)?;
  let cancel = CancelHandle::new_rc();
  let target = url.to_string();
  let future = {
    let cancel = cancel.clone();
    async move {
      let outcome = tokio::time::timeout(timeout, client.send(request))
        .or_cancel(cancel)
        .await?;
      Ok(match outcome {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(err)) => Err(match ResolvedRefusal::find(&err) {
          Some(refusal) => FetchError::Other(JsErrorBox::type_error(format!(
            "fetch to {target} refused: {refusal}"
          ))),
          None => FetchError::ClientSend(err),
        }),
        Err(_) => Err(FetchError::Other(JsErrorBox::type_error(format!(
          "fetch to {target} timed out: no response within {} ms",
          timeout.as_millis()
        )))),
      })
    }
  };
  let request_rid = state.resource_table.add(FetchRequestResource {
    future: Box::pin(future),
    url,
  });
  let cancel_handle_rid = state.resource_table.add(FetchCancelHandle(cancel));
  Ok(FetchReturn {
    request_rid,
    cancel_handle_rid: Some(cancel_handle_rid),
  })
}

/// A `data:` URL's response, decoded at once.
fn data_url(state: &mut OpState, url: Url) -> Result<FetchReturn, OutboundError> {
  let data = deno_fetch::data_url::DataUrl::process(url.as_str()).map_err(FetchError::DataUrl)?;
  let (body, _) = data.decode_to_vec().map_err(FetchError::Base64)?;
  let body = http_body_util::BodyExt::boxed(http_body_util::BodyExt::map_err(
    http_body_util::Full::new(body.into()),
    |never| match never {},
  ));
  let response = http::Response::builder()
    .header(http::header::CONTENT_TYPE, data.mime_type().to_string())
    .body(body)
    .map_err(FetchError::from)?;
  let request_rid = state.resource_table.add(FetchRequestResource {
    future: Box::pin(async move { Ok(Ok(response)) }),
    url,
  });
  Ok(FetchReturn {
    request_rid,
    cancel_handle_rid: None,
  })
}
