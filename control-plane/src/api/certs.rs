//! TLS certificates pushed to edges (`outpost certs`), admin scope:
//!
//! | call | scope |
//! |---|---|
//! | `PUT /v1/certificates` (`{"host", "cert", "key"}`: PEM) | admin |
//! | `GET /v1/certificates` (hosts, names and expiry; never keys) | read-only |
//! | `DELETE /v1/certificates/{host}` | admin |
//!
//! A certificate is checked before it is stored: the chain and key parse,
//! the key is the certificate's, and the certificate names the host. Its
//! key is sealed with the secrets key before it reaches the store.

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use outpost_protocol::tls::{covers, served_names};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use super::{ApiError, Reply, read_json};
use crate::app::ControlPlane;

#[derive(Deserialize)]
struct CertificateRequest {
  host: String,
  cert: String,
  key: String,
}

fn valid_host(host: &str) -> bool {
  let bare = host.strip_prefix("*.").unwrap_or(host);
  !bare.is_empty()
    && host.len() <= 253
    && bare.split('.').all(|label| {
      !label.is_empty()
        && label.len() <= 63
        && label
          .bytes()
          .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// Answers a call under `/v1/certificates`; `segments` follow it.
pub(super) async fn route(
  app: &ControlPlane,
  segments: &[&str],
  request: Request<Incoming>,
) -> Result<Reply, ApiError> {
  let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_certificate", message);
  let method = request.method().clone();
  match (&method, segments) {
    (&Method::PUT, []) => {
      let CertificateRequest { host, cert, key } = read_json(request).await?;
      let host = host.trim().to_ascii_lowercase();
      if !valid_host(&host) {
        return Err(bad(format!("{host:?} is not a host name")));
      }
      let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("the certificate is not PEM: {e}")))?;
      let leaf = chain
        .first()
        .ok_or_else(|| bad("no CERTIFICATE block in the certificate".into()))?;
      let (names, not_after) = served_names(leaf).map_err(bad)?;
      if !names.iter().any(|name| covers(name, &host)) {
        return Err(bad(format!(
          "the certificate names {names:?}, not {host:?}"
        )));
      }
      let private = PrivateKeyDer::from_pem_slice(key.as_bytes())
        .map_err(|e| bad(format!("the key is not a PEM private key: {e}")))?;
      let provider = rustls::crypto::aws_lc_rs::default_provider();
      rustls::sign::CertifiedKey::from_der(chain.clone(), private, &provider)
        .map_err(|e| bad(format!("the key does not fit the certificate: {e}")))?;
      let sealed = app
        .secrets()
        .and_then(|secrets| secrets.seal(key.as_bytes()))
        .map_err(|e| {
          ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no_secrets_key",
            e.to_string(),
          )
        })?;
      let epoch = app
        .store()
        .put_certificate(host.clone(), cert, sealed)
        .await?;
      app.changed(epoch);
      Ok(Reply::Json(
        StatusCode::OK,
        serde_json::json!({ "host": host, "names": names, "not_after": not_after, "epoch": epoch }),
      ))
    }
    (&Method::GET, []) => {
      let mut listed = Vec::new();
      for stored in app.store().certificates().await? {
        let leaf = CertificateDer::pem_slice_iter(stored.cert_pem.as_bytes()).next();
        let (names, not_after) = match leaf {
          Some(Ok(leaf)) => served_names(&leaf).unwrap_or_default(),
          _ => Default::default(),
        };
        listed.push(serde_json::json!({
          "host": stored.host,
          "names": names,
          "not_after": not_after,
          "created_at": stored.created_at,
        }));
      }
      Ok(Reply::Json(
        StatusCode::OK,
        serde_json::json!({ "certificates": listed }),
      ))
    }
    (&Method::DELETE, [host]) => {
      let host = host.to_ascii_lowercase();
      let epoch = app
        .store()
        .delete_certificate(host.clone())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no certificate for {host:?}")))?;
      app.changed(epoch);
      Ok(Reply::Json(
        StatusCode::OK,
        serde_json::json!({ "removed": host, "epoch": epoch }),
      ))
    }
    _ => Err(ApiError::not_found(format!(
      "no call {method} /v1/certificates/{}",
      segments.join("/")
    ))),
  }
}
