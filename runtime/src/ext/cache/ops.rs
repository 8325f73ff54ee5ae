//! The ops behind `caches`: put, match and delete on the node's response
//! cache, within the calling worker's scope.

use std::sync::Arc;
use std::time::Instant;

use deno_core::{JsBuffer, OpState, ToJsBuffer, op2};
use serde::{Deserialize, Serialize};

use super::error::CacheError;
use super::store::{CacheKey, CachedResponse, ResponseCache, header, lifetime};

/// Which node cache an isolate uses and under which worker; the worker's
/// start puts it in the isolate's `OpState`.
#[derive(Debug, Clone)]
pub struct CacheScope {
  /// The node's response cache.
  pub store: ResponseCache,
  /// The worker, so that no worker sees another's entries.
  pub worker: Arc<str>,
}

fn key(
  state: &OpState,
  cache: Option<String>,
  url: String,
) -> Result<(ResponseCache, CacheKey), CacheError> {
  let scope = state
    .try_borrow::<CacheScope>()
    .ok_or(CacheError::Unbound)?;
  let key = CacheKey {
    worker: scope.worker.clone(),
    cache,
    url,
  };
  Ok((scope.store.clone(), key))
}

/// A request as the cache sees it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheRequest {
  cache: Option<String>,
  url: String,
  headers: Vec<(String, String)>,
}

/// A response head to store.
#[derive(Debug, Deserialize)]
pub struct ResponseHead {
  status: u16,
  headers: Vec<(String, String)>,
}

/// A stored response, for JS to rebuild.
#[derive(Debug, Serialize)]
pub struct Hit {
  status: u16,
  headers: Vec<(String, String)>,
  body: ToJsBuffer,
}

/// Stores a response for a GET request; resolves whether it was stored
/// (headers such as `no-store`, or no `max-age`, keep it out, quietly).
#[op2]
pub fn op_cache_put(
  state: &mut OpState,
  #[serde] request: CacheRequest,
  #[serde] response: ResponseHead,
  #[buffer] body: JsBuffer,
) -> Result<bool, CacheError> {
  let vary_header = header(&response.headers, "vary")
    .unwrap_or_default()
    .to_owned();
  let mut vary = Vec::new();
  for name in vary_header
    .split(',')
    .map(str::trim)
    .filter(|n| !n.is_empty())
  {
    if name == "*" {
      return Err(CacheError::VaryStar);
    }
    let value = header(&request.headers, name).map(str::to_owned);
    vary.push((name.to_ascii_lowercase(), value));
  }
  let Ok(lifetime) = lifetime(&response.headers) else {
    return Ok(false);
  };
  let (store, key) = key(state, request.cache, request.url)?;
  let entry = CachedResponse {
    status: response.status,
    headers: response.headers,
    body: body.to_vec().into(),
    vary,
    stored_at: Instant::now(),
    lifetime,
  };
  Ok(store.put(key, entry).is_ok())
}

/// The fresh stored response for a request, with `cf-cache-status: HIT`
/// and its `age`; 304 without a body when the request's `If-None-Match`
/// names the stored `ETag`.
#[op2]
#[serde]
pub fn op_cache_match(
  state: &mut OpState,
  #[serde] request: CacheRequest,
) -> Result<Option<Hit>, CacheError> {
  let (store, key) = key(state, request.cache, request.url)?;
  let Some(entry) = store.get(&key, &request.headers) else {
    return Ok(None);
  };
  let mut headers: Vec<(String, String)> = entry
    .headers
    .iter()
    .filter(|(name, _)| !name.eq_ignore_ascii_case("age"))
    .cloned()
    .collect();
  headers.push((
    "age".into(),
    entry.stored_at.elapsed().as_secs().to_string(),
  ));
  headers.push(("cf-cache-status".into(), "HIT".into()));
  if not_modified(&request.headers, &entry.headers) {
    return Ok(Some(Hit {
      status: 304,
      headers,
      body: Vec::new().into(),
    }));
  }
  Ok(Some(Hit {
    status: entry.status,
    headers,
    body: entry.body.to_vec().into(),
  }))
}

/// Whether a request's `If-None-Match` names the stored response's `ETag`
/// (weak comparison, as for GET).
fn not_modified(request: &[(String, String)], stored: &[(String, String)]) -> bool {
  let (Some(wanted), Some(etag)) = (header(request, "if-none-match"), header(stored, "etag"))
  else {
    return false;
  };
  let weak = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
  wanted.trim() == "*" || wanted.split(',').any(|tag| weak(tag) == weak(etag))
}

/// Removes the stored response for a request; whether there was one.
#[op2]
pub fn op_cache_delete(
  state: &mut OpState,
  #[serde] request: CacheRequest,
) -> Result<bool, CacheError> {
  let (store, key) = key(state, request.cache, request.url)?;
  Ok(store.delete(&key))
}
