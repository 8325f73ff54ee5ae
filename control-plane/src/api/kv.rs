//! The KV calls, under `/v1/kv/namespaces`. Keys in paths are
//! percent-encoded. Values travel raw; a value's metadata rides in the
//! `outpost-kv-metadata` header (JSON) and its expiration in
//! `outpost-kv-expiration` (seconds since the Unix epoch).
//!
//! | call | scope |
//! |---|---|
//! | `POST /v1/kv/namespaces` (`{"title"}`), `GET /v1/kv/namespaces` | kv-write, read-only |
//! | `DELETE /v1/kv/namespaces/{id}` | kv-write |
//! | `GET /v1/kv/namespaces/{id}/keys?prefix=&limit=&cursor=` | read-only |
//! | `GET /v1/kv/namespaces/{id}/values/{key}` | read-only |
//! | `PUT /v1/kv/namespaces/{id}/values/{key}?expiration=&expiration_ttl=` (body: the value) | kv-write |
//! | `DELETE /v1/kv/namespaces/{id}/values/{key}` | kv-write |
//! | `PUT /v1/kv/namespaces/{id}/bulk` (`[{"key", "value", "base64", "expiration", "expiration_ttl", "metadata"}]`) | kv-write |
//! | `POST /v1/kv/namespaces/{id}/bulk/delete` (`["key", ...]`) | kv-write |

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use outpost_protocol::Bundle;
use outpost_protocol::kv::{self, KvError, KvListOptions, MAX_BULK_PAIRS, MAX_LIST_LIMIT};
use serde::Deserialize;

use super::{ApiError, Reply, hex_id, read_body, read_json};
use crate::app::ControlPlane;
use crate::kv::{BulkPair, KvChange, bulk_writes};
use crate::store::{KvWrite, Store};

/// The header carrying a value's metadata.
pub const METADATA_HEADER: &str = "outpost-kv-metadata";
/// The header carrying a value's expiration.
pub const EXPIRATION_HEADER: &str = "outpost-kv-expiration";
/// The largest bulk body: 10,000 pairs of modest values.
const MAX_BULK_BODY_BYTES: usize = 100 * 1024 * 1024;

impl From<KvError> for ApiError {
  fn from(err: KvError) -> Self {
    match err {
      KvError::ValueTooLarge(_) | KvError::MetadataTooLarge(_) => {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", err.to_string())
      }
      KvError::NoNamespace(_) => ApiError::not_found(err.to_string()),
      KvError::Unavailable(_) | KvError::Storage(_) => ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        err.to_string(),
      ),
      _ => ApiError::new(StatusCode::BAD_REQUEST, "invalid_kv", err.to_string()),
    }
  }
}

/// Refuses a bundle whose KV bindings name namespaces that do not exist.
pub(super) async fn check_bindings(store: &dyn Store, bundle: &Bundle) -> Result<(), ApiError> {
  if bundle.kv_namespaces.is_empty() {
    return Ok(());
  }
  let existing = store.kv_namespaces().await?;
  for binding in &bundle.kv_namespaces {
    if !existing.iter().any(|ns| ns.id == binding.id) {
      return Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_bundle",
        format!(
          "binding {} names KV namespace {:?}, which does not exist: create it with `outpost kv namespace create`",
          binding.binding, binding.id
        ),
      ));
    }
  }
  Ok(())
}

fn json(status: StatusCode, body: serde_json::Value) -> Result<Reply, ApiError> {
  Ok(Reply::Json(status, body))
}

/// Answers a call under `/v1/kv/`; `segments` follow `kv`.
pub(super) async fn route(
  app: &ControlPlane,
  segments: &[&str],
  request: Request<Incoming>,
) -> Result<Reply, ApiError> {
  let store = app.store();
  let method = request.method().clone();
  let query = request.uri().query().unwrap_or_default().to_owned();
  let params = |name: &str| {
    form_urlencoded::parse(query.as_bytes())
      .find(|(k, _)| k == name)
      .map(|(_, v)| v.into_owned())
  };
  match (&method, segments) {
    (&Method::POST, ["namespaces"]) => {
      let NamespaceRequest { title } = read_json(request).await?;
      if title.trim().is_empty() || title.len() > 256 {
        return Err(ApiError::bad_request(
          "a namespace needs a title of 1 to 256 bytes",
        ));
      }
      let namespace = store.create_kv_namespace(hex_id(16)?, title).await?;
      json(
        StatusCode::CREATED,
        serde_json::json!({ "namespace": namespace }),
      )
    }
    (&Method::GET, ["namespaces"]) => {
      let namespaces = store.kv_namespaces().await?;
      json(
        StatusCode::OK,
        serde_json::json!({ "namespaces": namespaces }),
      )
    }
    (&Method::DELETE, ["namespaces", id]) => {
      if !store.delete_kv_namespace((*id).to_owned()).await? {
        return Err(ApiError::not_found(format!(
          "no KV namespace has id {id:?}"
        )));
      }
      announce(app, id, None);
      json(StatusCode::OK, serde_json::json!({ "deleted": id }))
    }
    (&Method::GET, ["namespaces", id, "keys"]) => {
      let limit = match params("limit") {
        Some(limit) => limit
          .parse()
          .map_err(|_| ApiError::bad_request(format!("limit {limit:?} is not a number")))?,
        None => MAX_LIST_LIMIT,
      };
      let options = KvListOptions {
        prefix: params("prefix").unwrap_or_default(),
        limit,
        cursor: params("cursor").filter(|c| !c.is_empty()),
      };
      options.check()?;
      let page = store
        .kv_list((*id).to_owned(), options, app.clock().now())
        .await?;
      json(
        StatusCode::OK,
        serde_json::to_value(page).unwrap_or_default(),
      )
    }
    (&Method::GET, ["namespaces", id, "values", key]) => {
      let key = decode_key(key)?;
      let entry = store
        .kv_get((*id).to_owned(), key.clone(), app.clock().now())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no key {key:?}")))?;
      let mut response = Response::new(Full::new(Bytes::from(entry.value)));
      let headers = response.headers_mut();
      headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
      );
      if let Some(value) = entry.metadata.and_then(|m| HeaderValue::from_str(&m).ok()) {
        headers.insert(METADATA_HEADER, value);
      }
      if let Some(expiration) = entry.expiration {
        headers.insert(EXPIRATION_HEADER, HeaderValue::from(expiration));
      }
      Ok(Reply::Raw(response))
    }
    (&Method::PUT, ["namespaces", id, "values", key]) => {
      let key = decode_key(key)?;
      kv::check_key(&key)?;
      let metadata = request
        .headers()
        .get(METADATA_HEADER)
        .map(|value| {
          value
            .to_str()
            .map(str::to_owned)
            .map_err(|_| ApiError::bad_request(format!("{METADATA_HEADER} must be JSON text")))
        })
        .transpose()?;
      let seconds = |name: &str| -> Result<Option<u64>, ApiError> {
        params(name)
          .map(|v| {
            v.parse()
              .map_err(|_| ApiError::bad_request(format!("{name} {v:?} is not a number")))
          })
          .transpose()
      };
      let (expiration, ttl) = (seconds("expiration")?, seconds("expiration_ttl")?);
      let value = read_body(request, kv::MAX_VALUE_BYTES).await?;
      let entry = kv::prepare_put(
        &key,
        value.to_vec(),
        metadata,
        expiration,
        ttl,
        app.clock().now(),
      )?;
      write(app, id, vec![KvWrite::Put { key, entry }]).await
    }
    (&Method::DELETE, ["namespaces", id, "values", key]) => {
      let key = decode_key(key)?;
      kv::check_key(&key)?;
      write(app, id, vec![KvWrite::Delete { key }]).await
    }
    (&Method::PUT, ["namespaces", id, "bulk"]) => {
      let body = read_body(request, MAX_BULK_BODY_BYTES).await?;
      let pairs: Vec<BulkPair> = parse_bulk(&body)?;
      let writes = bulk_writes(pairs, app.clock().now())
        .map_err(|err| ApiError::bad_request(err.to_string()))?;
      write(app, id, writes).await
    }
    (&Method::POST, ["namespaces", id, "bulk", "delete"]) => {
      let body = read_body(request, MAX_BULK_BODY_BYTES).await?;
      let keys: Vec<String> = parse_bulk(&body)?;
      let mut writes = Vec::with_capacity(keys.len());
      for key in keys {
        kv::check_key(&key)?;
        writes.push(KvWrite::Delete { key });
      }
      write(app, id, writes).await
    }
    _ => Err(ApiError::not_found(format!(
      "no KV call {method} /v1/kv/{}",
      segments.join("/")
    ))),
  }
}

/// Stores `writes` in one transaction and tells the edges.
async fn write(
  app: &ControlPlane,
  namespace: &str,
  writes: Vec<KvWrite>,
) -> Result<Reply, ApiError> {
  let count = writes.len();
  let keys = writes.iter().map(|w| w.key().to_owned()).collect();
  app.store().kv_write(namespace.to_owned(), writes).await?;
  announce(app, namespace, Some(keys));
  json(StatusCode::OK, serde_json::json!({ "written": count }))
}

fn announce(app: &ControlPlane, namespace: &str, keys: Option<Vec<String>>) {
  app.kv_changed(KvChange {
    namespace: namespace.to_owned(),
    keys,
    origin: None,
  });
}

fn decode_key(raw: &str) -> Result<String, ApiError> {
  percent_encoding::percent_decode_str(raw)
    .decode_utf8()
    .map(|key| key.into_owned())
    .map_err(|_| ApiError::bad_request("the key is not percent-encoded UTF-8"))
}

fn parse_bulk<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Vec<T>, ApiError> {
  let items: Vec<T> = serde_json::from_slice(body).map_err(|err| {
    ApiError::new(
      StatusCode::BAD_REQUEST,
      "malformed",
      format!("malformed JSON body: {err}"),
    )
  })?;
  if items.len() > MAX_BULK_PAIRS {
    return Err(ApiError::new(
      StatusCode::PAYLOAD_TOO_LARGE,
      "too_large",
      format!(
        "{} items; a bulk call takes at most {MAX_BULK_PAIRS}",
        items.len()
      ),
    ));
  }
  Ok(items)
}

#[derive(Deserialize)]
struct NamespaceRequest {
  title: String,
}
