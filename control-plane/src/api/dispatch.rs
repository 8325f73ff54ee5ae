//! Dispatch namespaces under `/v1/dispatch-namespaces`, and the calls on
//! their user workers.
//!
//! | call | scope |
//! |---|---|
//! | `GET /v1/dispatch-namespaces` | read-only |
//! | `POST /v1/dispatch-namespaces` (`{"name"}`) | deploy |
//! | `GET /v1/dispatch-namespaces/{ns}` (the namespace and its user workers) | read-only |
//! | `DELETE /v1/dispatch-namespaces/{ns}` (its user workers stop serving; their versions stay) | deploy |
//! | `… /v1/dispatch-namespaces/{ns}/workers/{name}/…` | as the same call under `/v1/workers/{name}/…` |
//!
//! A user worker is a worker stored as `<ns>/<name>`, so every worker call
//! (versions, deployments, rollback, removal, secrets, tail) works on it:
//! [`user_worker_call`] rewrites the path before the gate decides, and the
//! gate holds it to what the worker call needs.

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use super::{ApiError, worker_name};
use crate::app::ControlPlane;

/// A call on a user worker: its namespace, its stored name, and the rest
/// of the path after `workers/{name}`.
pub(super) struct UserWorkerCall<'a> {
  /// The namespace.
  pub namespace: String,
  /// The name it is stored under, `<ns>/<name>`.
  pub stored: String,
  /// What follows the worker in the path.
  pub rest: &'a [&'a str],
}

impl UserWorkerCall<'_> {
  /// The path as the worker call it is: `workers/<ns>/<name>/…` as one
  /// segment for the worker.
  pub fn segments(&self) -> Vec<&str> {
    let mut segments = vec!["workers", self.stored.as_str()];
    segments.extend_from_slice(self.rest);
    segments
  }
}

/// `segments` as a call on a user worker, if they are one; a bad
/// namespace or worker name is a 400.
pub(super) fn user_worker_call<'a>(
  segments: &'a [&'a str],
) -> Result<Option<UserWorkerCall<'a>>, ApiError> {
  let [
    "dispatch-namespaces",
    namespace,
    "workers",
    worker,
    rest @ ..,
  ] = segments
  else {
    return Ok(None);
  };
  let namespace = namespace_name(namespace)?;
  let worker = worker_name(worker)?;
  Ok(Some(UserWorkerCall {
    stored: outpost_protocol::namespaced_worker(&namespace, &worker),
    namespace,
    rest,
  }))
}

/// Refuses a call on a user worker of a namespace that does not exist.
pub(super) async fn check_exists(app: &ControlPlane, namespace: &str) -> Result<(), ApiError> {
  match app.store().dispatch_namespace(namespace.to_owned()).await? {
    Some(_) => Ok(()),
    None => Err(missing(namespace)),
  }
}

fn missing(namespace: &str) -> ApiError {
  ApiError::not_found(format!(
    "no dispatch namespace {namespace:?}: create it with `outpost dispatch-namespace create {namespace}`"
  ))
}

fn namespace_name(name: &str) -> Result<String, ApiError> {
  worker_name(name).map_err(|_| {
    ApiError::bad_request(format!(
      "bad dispatch namespace name {name:?}: use 1 to 63 lowercase letters, digits and -, not starting with -"
    ))
  })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
  name: String,
}

/// Answers a call on the namespaces themselves; `segments` follow
/// `dispatch-namespaces`.
pub(super) async fn route(
  app: &ControlPlane,
  segments: &[&str],
  request: Request<Incoming>,
) -> Result<(StatusCode, serde_json::Value), ApiError> {
  let store = app.store();
  let method = request.method().clone();
  match (&method, segments) {
    (&Method::GET, []) => {
      let namespaces = store.dispatch_namespaces().await?;
      Ok((
        StatusCode::OK,
        serde_json::json!({ "namespaces": namespaces }),
      ))
    }
    (&Method::POST, []) => {
      let CreateRequest { name } = super::read_json(request).await?;
      let name = namespace_name(&name)?;
      let namespace = store.create_dispatch_namespace(name).await?;
      Ok((
        StatusCode::CREATED,
        serde_json::json!({ "namespace": namespace }),
      ))
    }
    (&Method::GET, [name]) => {
      let name = namespace_name(name)?;
      let namespace = store
        .dispatch_namespace(name.clone())
        .await?
        .ok_or_else(|| missing(&name))?;
      let workers = store.user_workers(name).await?;
      Ok((
        StatusCode::OK,
        serde_json::json!({ "namespace": namespace, "workers": workers }),
      ))
    }
    (&Method::DELETE, [name]) => {
      let name = namespace_name(name)?;
      let epoch = store.delete_dispatch_namespace(name.clone()).await?;
      app.changed(epoch);
      Ok((
        StatusCode::OK,
        serde_json::json!({ "deleted": name, "epoch": epoch }),
      ))
    }
    _ => Err(ApiError::not_found(format!(
      "no API call {method} /v1/dispatch-namespaces/{}",
      segments.join("/")
    ))),
  }
}
