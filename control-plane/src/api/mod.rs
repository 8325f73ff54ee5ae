//! The HTTP API, JSON under `/v1`, every call but `/v1/health` with a
//! bearer token of a scope that allows it. The scope each call needs is
//! decided in one place before any handler runs: [`gate::ROUTES`]; the
//! table below is its summary.
//!
//! | call | scope |
//! |---|---|
//! | `POST /v1/workers/{worker}/versions` (body: a bundle) | deploy |
//! | `GET /v1/workers/{worker}/versions` | read-only |
//! | `POST /v1/workers/{worker}/deployments` (`{"version": 3}` or `{"versions": [{"version", "percent"}, ...]}`) | deploy |
//! | `GET /v1/workers/{worker}/deployments` | read-only |
//! | `GET /v1/workers/{worker}/triggers` (cron triggers of the versions serving it, when each fires next, and the recent firings) | read-only |
//! | `POST /v1/workers/{worker}/rollback` | deploy |
//! | `DELETE /v1/workers/{worker}` (stop serving it: its routes go, its versions stay) | deploy |
//! | `GET /v1/routes`, `PUT /v1/routes` (`{"pattern", "worker"}`), `DELETE /v1/routes` (`{"pattern"}`) | read-only, deploy |
//! | `POST /v1/tokens` (`{"scope", "label"}`) | admin |
//! | `POST /v1/edges/enroll` (`{"name", "csr"}`: a PEM certificate request) | edge-join, once |
//! | `GET /v1/edges` | read-only |
//! | `DELETE /v1/edges/{id}` (shuts the node out) | admin |
//! | `GET /v1/state` (what edges serve now) | read-only |
//! | `GET /v1/whoami` (the token's id, scope and label) | any |
//! | `GET /v1/workers/{worker}/tail` (live events from every edge, one JSON object per line) | read-only |
//!
//! Static assets' bytes are under `/v1/assets` (see [`assets`]), KV calls
//! under `/v1/kv/namespaces` (see [`kv`]), TLS certificates
//! for edges under `/v1/certificates` (see [`certs`]), a worker's secrets
//! under `/v1/workers/{worker}/secrets` (see [`secrets`]), dispatch
//! namespaces and their user workers under `/v1/dispatch-namespaces` (see
//! [`dispatch`]).

mod assets;
mod certs;
mod dispatch;
mod error;
pub mod gate;
mod kv;
mod secrets;
mod tail;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use outpost_protocol::bundle::MAX_BUNDLE_BYTES;
use outpost_protocol::{Bundle, RoutePattern};
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use error::ApiError;

use crate::app::ControlPlane;
use crate::store::{Scope, Share, TokenRecord};
use crate::tokens;

/// The largest body any call takes: a bundle, and room for its JSON.
const MAX_BODY_BYTES: usize = MAX_BUNDLE_BYTES + 64 * 1024;
/// The largest body of a call that is not an upload.
const MAX_SMALL_BODY_BYTES: usize = 64 * 1024;

type ApiResult = Result<(StatusCode, serde_json::Value), ApiError>;

/// A response body: whole, or (a tail) streamed.
pub type ApiBody = BoxBody<Bytes, std::convert::Infallible>;

/// What a call answers: JSON, raw bytes (a KV value), or a stream (a tail).
enum Reply {
  Json(StatusCode, serde_json::Value),
  Raw(Response<Full<Bytes>>),
  Stream(Response<ApiBody>),
}

/// Answers one API request.
pub async fn handle(app: Arc<ControlPlane>, request: Request<Incoming>) -> Response<ApiBody> {
  let (status, body) = match route(&app, request).await {
    Ok(Reply::Json(status, body)) => (status, body),
    Ok(Reply::Raw(response)) => return response.map(BodyExt::boxed),
    Ok(Reply::Stream(response)) => return response,
    Err(err) => (err.status, err.body()),
  };
  let bytes = serde_json::to_vec_pretty(&body).unwrap_or_default();
  let mut response = Response::new(Full::new(Bytes::from(bytes)).boxed());
  *response.status_mut() = status;
  response.headers_mut().insert(
    header::CONTENT_TYPE,
    header::HeaderValue::from_static("application/json"),
  );
  response
}

async fn route(app: &Arc<ControlPlane>, request: Request<Incoming>) -> Result<Reply, ApiError> {
  let path = request.uri().path().to_owned();
  let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
  let method = request.method().clone();
  let Some((&"v1", segments)) = segments.split_first() else {
    return Err(ApiError::not_found(format!(
      "no API at {path}; the API is under /v1"
    )));
  };
  // A user worker's calls are the worker calls of its stored name.
  let user_worker = dispatch::user_worker_call(segments)?;
  let rewritten = user_worker.as_ref().map(|call| call.segments());
  let segments: &[&str] = rewritten.as_deref().unwrap_or(segments);
  // Every call is decided here, before any handler runs.
  let need = gate::need(&method, segments)?;
  if need == gate::Need::Nothing {
    return Ok(Reply::Json(
      StatusCode::OK,
      serde_json::json!({ "ok": true }),
    ));
  }
  let (token, token_hash) = authenticate(app, &request).await?;
  gate::admit(need, token.scope)?;
  if let (&Method::GET, ["whoami"]) = (&method, segments) {
    return Ok(Reply::Json(
      StatusCode::OK,
      serde_json::json!({ "id": token.id, "scope": token.scope, "label": token.label }),
    ));
  }
  if let Some(call) = &user_worker {
    dispatch::check_exists(app, &call.namespace).await?;
  }
  if let Some((&"dispatch-namespaces", segments)) = segments.split_first() {
    let (status, body) = dispatch::route(app, segments, request).await?;
    return Ok(Reply::Json(status, body));
  }
  if let Some((&"kv", segments)) = segments.split_first() {
    return kv::route(app, segments, request).await;
  }
  if let Some((&"assets", segments)) = segments.split_first() {
    let (status, body) = assets::route(app, segments, request).await?;
    return Ok(Reply::Json(status, body));
  }
  if let Some((&"certificates", segments)) = segments.split_first() {
    return certs::route(app, segments, request).await;
  }
  if let ["workers", worker, "secrets", rest @ ..] = segments {
    let (status, body) = secrets::route(app, path_worker(worker)?, rest, request).await?;
    return Ok(Reply::Json(status, body));
  }
  if let (&Method::GET, ["workers", worker, "tail"]) = (&method, segments) {
    return Ok(Reply::Stream(tail::stream(app, path_worker(worker)?)));
  }
  let (status, body) = platform(app, request, token_hash, &path, segments).await?;
  Ok(Reply::Json(status, body))
}

/// Workers, deployments, routes, tokens and edges.
async fn platform(
  app: &ControlPlane,
  request: Request<Incoming>,
  token_hash: String,
  path: &str,
  segments: &[&str],
) -> ApiResult {
  let store = app.store();
  let method = request.method().clone();
  match (&method, segments) {
    (&Method::POST, ["workers", worker, "versions"]) => {
      let worker = path_worker(worker)?;
      let bytes = read_body(request, MAX_BODY_BYTES).await?;
      let bundle = Bundle::from_json(&bytes)?;
      kv::check_bindings(store, &bundle).await?;
      assets::check_uploaded(app, &bundle).await?;
      // The new version keeps the newest one's secrets: none may share a
      // name with the bundle's vars or bindings.
      if let Some(newest) = store.versions(worker.clone()).await?.last() {
        let sealed = store
          .sealed_secrets(vec![(worker.clone(), newest.number)])
          .await?
          .pop()
          .flatten();
        secrets::check_clashes(&bundle, secrets::open(app, sealed.as_deref())?.keys())?;
      }
      let uploaded = store
        .put_version(worker, bundle.hash(), bundle.canonical_bytes())
        .await?;
      let status = if uploaded.created {
        StatusCode::CREATED
      } else {
        StatusCode::OK
      };
      Ok((status, serde_json::to_value(uploaded).unwrap_or_default()))
    }
    (&Method::GET, ["workers", worker, "versions"]) => {
      let versions = store.versions(path_worker(worker)?).await?;
      Ok((StatusCode::OK, serde_json::json!({ "versions": versions })))
    }
    (&Method::POST, ["workers", worker, "deployments"]) => {
      let worker = path_worker(worker)?;
      let shares = read_json::<DeployRequest>(request).await?.shares()?;
      let deployment = store.deploy(worker, shares).await?;
      app.changed(deployment.epoch);
      Ok((
        StatusCode::CREATED,
        serde_json::json!({ "deployment": deployment }),
      ))
    }
    (&Method::GET, ["workers", worker, "triggers"]) => {
      let worker = path_worker(worker)?;
      let triggers = triggers(store, &worker).await?;
      let recent: Vec<serde_json::Value> = store
        .firings(worker.clone(), 20)
        .await?
        .into_iter()
        .map(|firing| {
          serde_json::json!({
            "cron": firing.key.cron,
            "scheduled_ms": firing.key.scheduled_ms,
            "scheduled": outpost_protocol::cron::utc_text(firing.key.scheduled_ms),
            "edge": firing.edge,
            "ok": firing.ok,
            "duration_ms": firing.duration_ms,
          })
        })
        .collect();
      Ok((
        StatusCode::OK,
        serde_json::json!({ "worker": worker, "triggers": triggers, "recent": recent }),
      ))
    }
    (&Method::GET, ["workers", worker, "deployments"]) => {
      let deployments = store.deployments(path_worker(worker)?).await?;
      Ok((
        StatusCode::OK,
        serde_json::json!({ "deployments": deployments }),
      ))
    }
    (&Method::POST, ["workers", worker, "rollback"]) => {
      let worker = path_worker(worker)?;
      let deployment = store.rollback(worker).await?;
      app.changed(deployment.epoch);
      Ok((
        StatusCode::CREATED,
        serde_json::json!({ "deployment": deployment }),
      ))
    }
    (&Method::DELETE, ["workers", worker]) => {
      let worker = path_worker(worker)?;
      let deployment = store.remove_worker(worker).await?;
      app.changed(deployment.epoch);
      Ok((
        StatusCode::OK,
        serde_json::json!({ "deployment": deployment }),
      ))
    }
    (&Method::GET, ["routes"]) => {
      let state = store.state().await?;
      Ok((
        StatusCode::OK,
        serde_json::json!({ "routes": state.routes }),
      ))
    }
    (&Method::PUT, ["routes"]) => {
      let RouteRequest { pattern, worker } = read_json(request).await?;
      let pattern =
        RoutePattern::parse(&pattern).map_err(|e| ApiError::bad_request(e.to_string()))?;
      let worker = worker.ok_or_else(|| ApiError::bad_request("a route needs a \"worker\""))?;
      let worker = worker_name(&worker)?;
      if store.versions(worker.clone()).await?.is_empty() {
        return Err(ApiError::not_found(format!(
          "no worker {worker:?}: upload a version first"
        )));
      }
      let epoch = store.put_route(pattern.clone(), worker.clone()).await?;
      app.changed(epoch);
      Ok((
        StatusCode::OK,
        serde_json::json!({ "route": { "pattern": pattern, "worker": worker }, "epoch": epoch }),
      ))
    }
    (&Method::DELETE, ["routes"]) => {
      let RouteRequest { pattern, .. } = read_json(request).await?;
      let pattern =
        RoutePattern::parse(&pattern).map_err(|e| ApiError::bad_request(e.to_string()))?;
      let epoch = store.delete_route(pattern).await?;
      app.changed(epoch);
      Ok((StatusCode::OK, serde_json::json!({ "epoch": epoch })))
    }
    (&Method::POST, ["tokens"]) => {
      let TokenRequest {
        scope: wanted,
        label,
      } = read_json(request).await?;
      let wanted = Scope::parse(&wanted).ok_or_else(|| {
        let names: Vec<_> = Scope::ALL.iter().map(|s| s.name()).collect();
        ApiError::bad_request(format!(
          "unknown scope {wanted:?}; one of {}",
          names.join(", ")
        ))
      })?;
      let token = tokens::generate()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
      let record = store
        .create_token(tokens::hash(&token), wanted, label.unwrap_or_default())
        .await?;
      Ok((
        StatusCode::CREATED,
        serde_json::json!({ "token": token, "id": record.id, "scope": wanted }),
      ))
    }
    (&Method::POST, ["edges", "enroll"]) => {
      let EnrollRequest { name, csr } = read_json(request).await?;
      let name = worker_name(&name).map_err(|_| {
        ApiError::bad_request(format!(
          "bad edge name {name:?}: use 1 to 63 lowercase letters, digits and -"
        ))
      })?;
      let id = format!("edge-{}", hex_id(8)?);
      let certificate = app.authority().sign_edge(&csr, &id).map_err(|err| {
        ApiError::new(
          StatusCode::BAD_REQUEST,
          "bad_csr",
          format!("the certificate request was refused: {err}"),
        )
      })?;
      if !store.use_join_token(token_hash).await? {
        return Err(ApiError::new(
          StatusCode::UNAUTHORIZED,
          "unauthorized",
          "this join token has been used already",
        ));
      }
      let edge = store.add_edge(id.clone(), name).await?;
      tracing::info!(node = %edge.id, name = %edge.name, "edge enrolled");
      Ok((
        StatusCode::CREATED,
        serde_json::json!({
          "id": id,
          "certificate": certificate,
          "ca": app.authority().ca_pem(),
          "sync_address": app.sync_address(),
        }),
      ))
    }
    (&Method::GET, ["edges"]) => {
      let edges = store.edges().await?;
      Ok((StatusCode::OK, serde_json::json!({ "edges": edges })))
    }
    (&Method::DELETE, ["edges", id]) => {
      if !store.remove_edge((*id).to_owned()).await? {
        return Err(ApiError::not_found(format!("no edge node {id:?}")));
      }
      app.edge_removed(id);
      tracing::info!(node = %id, "edge removed");
      Ok((StatusCode::OK, serde_json::json!({ "removed": id })))
    }
    (&Method::GET, ["state"]) => {
      let state = store.state().await?;
      Ok((
        StatusCode::OK,
        serde_json::to_value(state).unwrap_or_default(),
      ))
    }
    _ => Err(ApiError::new(
      StatusCode::NOT_FOUND,
      "not_found",
      format!("no API call {method} {path}"),
    )),
  }
}

/// The cron triggers of the versions serving `worker`, each with its next
/// firing: `{"version", "cron", "next_ms", "next"}`.
async fn triggers(
  store: &dyn crate::store::Store,
  worker: &str,
) -> Result<Vec<serde_json::Value>, ApiError> {
  use outpost_protocol::cron::{CronTrigger, utc_text};
  let active = store.deployments(worker.to_owned()).await?;
  let shares = active.first().map(|d| d.shares.clone()).unwrap_or_default();
  let versions = store.versions(worker.to_owned()).await?;
  let now = u64::try_from(crate::store::now()).unwrap_or(0) * 1000;
  let mut triggers = Vec::new();
  for share in shares {
    let Some(version) = versions.iter().find(|v| v.number == share.version) else {
      continue;
    };
    let Some(bytes) = store.bundle(version.hash.clone()).await? else {
      continue;
    };
    let bundle = Bundle::from_stored(&bytes, &version.hash)?;
    for cron in bundle.crons {
      let next = CronTrigger::parse(&cron)
        .ok()
        .and_then(|t| t.next_after(now));
      triggers.push(serde_json::json!({
        "version": share.version,
        "cron": cron,
        "next_ms": next,
        "next": next.map(utc_text),
      }));
    }
  }
  Ok(triggers)
}

/// The request's bearer token, as stored, and its hash.
async fn authenticate<B>(
  app: &ControlPlane,
  request: &Request<B>,
) -> Result<(TokenRecord, String), ApiError> {
  let unauthorized =
    |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
  let header = request
    .headers()
    .get(header::AUTHORIZATION)
    .ok_or_else(|| unauthorized("missing Authorization: Bearer <token>"))?;
  let token = header
    .to_str()
    .ok()
    .and_then(|value| value.strip_prefix("Bearer "))
    .map(str::trim)
    .ok_or_else(|| unauthorized("the Authorization header must be Bearer <token>"))?;
  let hash = tokens::hash(token);
  let record = app
    .store()
    .find_token(hash.clone())
    .await?
    .ok_or_else(|| unauthorized("unknown token"))?;
  Ok((record, hash))
}

/// Checks a worker name: 1 to 63 lowercase letters, digits and `-`,
/// starting with a letter or digit (it becomes part of host names).
pub fn worker_name(name: &str) -> Result<String, ApiError> {
  if outpost_protocol::is_worker_name(name) {
    Ok(name.to_owned())
  } else {
    Err(ApiError::bad_request(format!(
      "bad worker name {name:?}: use 1 to 63 lowercase letters, digits and -, not starting with -"
    )))
  }
}

/// Checks the worker a path names: a worker's name, or the stored name of
/// a dispatch namespace's user worker (`<ns>/<name>`), which only
/// [`dispatch::user_worker_call`]'s rewrite puts in a path.
fn path_worker(name: &str) -> Result<String, ApiError> {
  match name.split_once('/') {
    Some((namespace, worker))
      if outpost_protocol::is_worker_name(namespace)
        && outpost_protocol::is_worker_name(worker) =>
    {
      Ok(name.to_owned())
    }
    _ => worker_name(name),
  }
}

async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
  let too_large = || {
    ApiError::new(
      StatusCode::PAYLOAD_TOO_LARGE,
      "too_large",
      format!("the body is over the {limit}-byte limit"),
    )
  };
  let declared = request
    .headers()
    .get(header::CONTENT_LENGTH)
    .and_then(|value| value.to_str().ok())
    .and_then(|value| value.parse::<u64>().ok());
  if declared.is_some_and(|length| length > limit as u64) {
    return Err(too_large());
  }
  match Limited::new(request.into_body(), limit).collect().await {
    Ok(collected) => Ok(collected.to_bytes()),
    Err(err)
      if err
        .downcast_ref::<http_body_util::LengthLimitError>()
        .is_some() =>
    {
      Err(too_large())
    }
    Err(err) => Err(ApiError::bad_request(format!(
      "could not read the body: {err}"
    ))),
  }
}

async fn read_json<T: DeserializeOwned>(request: Request<Incoming>) -> Result<T, ApiError> {
  let bytes = read_body(request, MAX_SMALL_BODY_BYTES).await?;
  serde_json::from_slice(&bytes).map_err(|err| {
    ApiError::new(
      StatusCode::BAD_REQUEST,
      "malformed",
      format!("malformed JSON body: {err}"),
    )
  })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployRequest {
  version: Option<u64>,
  versions: Option<Vec<Share>>,
}

impl DeployRequest {
  fn shares(self) -> Result<Vec<Share>, ApiError> {
    match (self.version, self.versions) {
      (Some(version), None) => Ok(vec![Share {
        version,
        percent: 100,
      }]),
      (None, Some(shares)) => Ok(shares),
      _ => Err(ApiError::bad_request(
        "give either \"version\": N or \"versions\": [{\"version\": N, \"percent\": P}, ...]",
      )),
    }
  }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteRequest {
  pattern: String,
  worker: Option<String>,
}

/// 8 random bytes as hex, for edge ids.
/// `len` random bytes as lowercase hex.
fn hex_id(len: usize) -> Result<String, ApiError> {
  let mut bytes = vec![0u8; len];
  getrandom::fill(&mut bytes).map_err(|err| {
    ApiError::new(
      StatusCode::INTERNAL_SERVER_ERROR,
      "internal",
      err.to_string(),
    )
  })?;
  Ok(outpost_protocol::bundle::hex(&bytes))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollRequest {
  name: String,
  csr: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
  scope: String,
  label: Option<String>,
}
