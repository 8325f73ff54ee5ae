//! Static assets' bytes, uploaded apart from the versions whose manifests
//! name them, once per content hash:
//!
//! | call | scope |
//! |---|---|
//! | `POST /v1/assets/missing` (`{"hashes": [...]}`: which the store lacks) | deploy |
//! | `PUT /v1/assets/{sha256}` (the bytes, checked against the hash) | deploy |

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use outpost_protocol::assets::{MAX_ASSET_BYTES, MAX_ASSET_FILES};
use outpost_protocol::bundle::{is_sha256_hex, sha256_hex};
use serde::Deserialize;

use super::{ApiError, ApiResult, read_body};
use crate::app::ControlPlane;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MissingRequest {
  hashes: Vec<String>,
}

/// Serves `/v1/assets/...`; `segments` follow `assets`.
pub(super) async fn route(
  app: &ControlPlane,
  segments: &[&str],
  request: Request<Incoming>,
) -> ApiResult {
  let method = request.method().clone();
  match (&method, segments) {
    (&Method::POST, ["missing"]) => {
      let bytes = read_body(request, MAX_ASSET_FILES * 80 + 1024).await?;
      let asked: MissingRequest = serde_json::from_slice(&bytes)
        .map_err(|err| ApiError::bad_request(format!("malformed JSON body: {err}")))?;
      if let Some(bad) = asked.hashes.iter().find(|h| !is_sha256_hex(h)) {
        return Err(ApiError::bad_request(format!(
          "{bad:?} is not a sha256 in lowercase hex"
        )));
      }
      let missing = app.store().missing_assets(asked.hashes).await?;
      Ok((StatusCode::OK, serde_json::json!({ "missing": missing })))
    }
    (&Method::PUT, [hash]) => {
      if !is_sha256_hex(hash) {
        return Err(ApiError::bad_request(format!(
          "{hash:?} is not a sha256 in lowercase hex"
        )));
      }
      let limit = usize::try_from(MAX_ASSET_BYTES).unwrap_or(usize::MAX);
      let bytes = read_body(request, limit).await?;
      let actual = sha256_hex(&bytes);
      if actual != *hash {
        return Err(ApiError::bad_request(format!(
          "the body hashes to {actual}, not {hash}"
        )));
      }
      let added = app
        .store()
        .put_asset((*hash).to_owned(), bytes.to_vec())
        .await?;
      let status = if added {
        StatusCode::CREATED
      } else {
        StatusCode::OK
      };
      Ok((
        status,
        serde_json::json!({ "hash": hash, "size": bytes.len() }),
      ))
    }
    _ => Err(ApiError::not_found(format!(
      "no API call {method} /v1/assets/{}",
      segments.join("/")
    ))),
  }
}

/// Refuses a bundle whose manifest names assets the store lacks.
pub(super) async fn check_uploaded(
  app: &ControlPlane,
  bundle: &outpost_protocol::Bundle,
) -> Result<(), ApiError> {
  let Some(manifest) = &bundle.assets else {
    return Ok(());
  };
  let mut hashes: Vec<String> = manifest.files.values().map(|f| f.hash.clone()).collect();
  hashes.sort();
  hashes.dedup();
  let missing = app.store().missing_assets(hashes).await?;
  if missing.is_empty() {
    return Ok(());
  }
  Err(ApiError::bad_request(format!(
    "{} asset(s) of this version were not uploaded (PUT /v1/assets/{{hash}} first): {}",
    missing.len(),
    missing
      .iter()
      .take(5)
      .cloned()
      .collect::<Vec<_>>()
      .join(", ")
  )))
}
