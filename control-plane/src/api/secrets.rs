//! Worker secrets, under `/v1/workers/{worker}/secrets`:
//!
//! | call | scope |
//! |---|---|
//! | `GET .../secrets` (names only) | read-only |
//! | `PUT .../secrets/{name}` (`{"value": "..."}`) | deploy |
//! | `DELETE .../secrets/{name}` | deploy |
//! | `POST .../secrets` (`{"secrets": {"NAME": "value", ...}}`, several at once) | deploy |
//!
//! Each change makes a new version (the serving version's bundle with the
//! new secrets) and deploys it where that version served alone, as Workers
//! does, so a rollback brings back the secrets that went with the code.
//! Values are sealed with the secrets key before they reach the store and
//! are never logged or answered back.

use std::collections::BTreeMap;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use outpost_protocol::Bundle;
use serde::Deserialize;

use super::{ApiError, ApiResult, read_json};
use crate::app::ControlPlane;
use crate::secrets::SecretsError;
use crate::store::SecretsBase;

/// The largest secret value, in bytes (Workers' limit too).
pub const MAX_SECRET_BYTES: usize = 5 * 1024;
/// The most secrets one worker may have.
pub const MAX_SECRETS: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutSecret {
  value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutSecrets {
  secrets: BTreeMap<String, String>,
}

fn internal(err: SecretsError) -> ApiError {
  tracing::error!("secrets: {err}");
  ApiError::new(
    StatusCode::INTERNAL_SERVER_ERROR,
    "internal",
    format!("secrets cannot be read or written: {err}"),
  )
}

fn check_name(name: &str) -> Result<(), ApiError> {
  let mut chars = name.chars();
  let valid = name.len() <= 128
    && chars
      .next()
      .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
  if valid {
    Ok(())
  } else {
    Err(ApiError::bad_request(format!(
      "bad secret name {name:?}: use letters, digits and _, not starting with a digit (at most 128)"
    )))
  }
}

fn check_value(name: &str, value: &str) -> Result<(), ApiError> {
  if value.len() > MAX_SECRET_BYTES {
    return Err(ApiError::new(
      StatusCode::PAYLOAD_TOO_LARGE,
      "too_large",
      format!(
        "secret {name} is {} bytes; a secret may hold at most {MAX_SECRET_BYTES}",
        value.len()
      ),
    ));
  }
  Ok(())
}

/// The secrets of `sealed`, opened.
pub(crate) fn open(
  app: &ControlPlane,
  sealed: Option<&str>,
) -> Result<BTreeMap<String, String>, ApiError> {
  let Some(sealed) = sealed else {
    return Ok(BTreeMap::new());
  };
  let bytes = app
    .secrets()
    .and_then(|key| key.open(sealed))
    .map_err(internal)?;
  serde_json::from_slice(&bytes).map_err(|_| internal(SecretsError::Corrupt))
}

fn seal(
  app: &ControlPlane,
  secrets: &BTreeMap<String, String>,
) -> Result<Option<String>, ApiError> {
  if secrets.is_empty() {
    return Ok(None);
  }
  let json = serde_json::to_vec(secrets).map_err(|_| internal(SecretsError::Corrupt))?;
  app
    .secrets()
    .and_then(|key| key.seal(&json))
    .map(Some)
    .map_err(internal)
}

/// Refuses secrets named like one of `bundle`'s vars or bindings: both
/// would be `env.NAME`.
pub(crate) fn check_clashes<'a>(
  bundle: &Bundle,
  names: impl IntoIterator<Item = &'a String>,
) -> Result<(), ApiError> {
  for name in names {
    let clash = if bundle.vars.contains_key(name) {
      Some("a var")
    } else if bundle.kv_namespaces.iter().any(|kv| kv.binding == *name) {
      Some("a KV binding")
    } else {
      None
    };
    if let Some(what) = clash {
      return Err(ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        format!(
          "{name} is {what} of the worker and a secret: both would be env.{name}; rename one"
        ),
      ));
    }
  }
  Ok(())
}

async fn base_bundle(app: &ControlPlane, base: &SecretsBase) -> Result<Bundle, ApiError> {
  let hash = &base.version.hash;
  let bytes = app.store().bundle(hash.clone()).await?.ok_or_else(|| {
    ApiError::not_found(format!("the bundle of v{} is missing", base.version.number))
  })?;
  Ok(Bundle::from_stored(&bytes, hash)?)
}

/// Applies `set` and `delete` to `worker`'s secrets as one new version.
async fn change(
  app: &ControlPlane,
  worker: String,
  set: BTreeMap<String, String>,
  delete: Option<String>,
) -> ApiResult {
  for (name, value) in &set {
    check_name(name)?;
    check_value(name, value)?;
  }
  let store = app.store();
  let base = store.secrets_base(worker.clone()).await?;
  let mut secrets = open(app, base.sealed.as_deref())?;
  if let Some(name) = &delete
    && secrets.remove(name).is_none()
  {
    return Err(ApiError::not_found(format!(
      "worker {worker:?} has no secret {name}"
    )));
  }
  check_clashes(&base_bundle(app, &base).await?, set.keys())?;
  let names: Vec<String> = set.keys().cloned().collect();
  secrets.extend(set);
  if secrets.len() > MAX_SECRETS {
    return Err(ApiError::bad_request(format!(
      "a worker may have at most {MAX_SECRETS} secrets; this would make {}",
      secrets.len()
    )));
  }
  let sealed = seal(app, &secrets)?;
  let changed = store
    .put_secrets(worker.clone(), base.version.number, sealed)
    .await?;
  if let Some(deployment) = &changed.deployment {
    app.changed(deployment.epoch);
  }
  tracing::info!(%worker, version = changed.version.number, ?names, removed = ?delete, "secrets changed");
  let mut body = serde_json::to_value(&changed).unwrap_or_default();
  body["secrets"] = serde_json::json!(secrets.keys().collect::<Vec<_>>());
  Ok((StatusCode::CREATED, body))
}

/// Answers a call under `/v1/workers/{worker}/secrets`; `rest` is what
/// follows `secrets`.
pub(super) async fn route(
  app: &ControlPlane,
  worker: String,
  rest: &[&str],
  request: Request<Incoming>,
) -> ApiResult {
  let method = request.method().clone();
  match (&method, rest) {
    (&Method::GET, []) => {
      let base = app.store().secrets_base(worker).await?;
      let names: Vec<String> = open(app, base.sealed.as_deref())?.into_keys().collect();
      Ok((
        StatusCode::OK,
        serde_json::json!({ "version": base.version.number, "secrets": names }),
      ))
    }
    (&Method::PUT, [name]) => {
      let PutSecret { value } = read_json(request).await?;
      let set = BTreeMap::from([((*name).to_owned(), value)]);
      change(app, worker, set, None).await
    }
    (&Method::POST, []) => {
      let PutSecrets { secrets } = read_json(request).await?;
      if secrets.is_empty() {
        return Err(ApiError::bad_request("no secrets given"));
      }
      change(app, worker, secrets, None).await
    }
    (&Method::DELETE, [name]) => {
      change(app, worker, BTreeMap::new(), Some((*name).to_owned())).await
    }
    _ => Err(ApiError::not_found(format!(
      "no API call {method} on a worker's secrets"
    ))),
  }
}
