//! The control plane's certificate authority: made on first start and kept
//! in the store (so every replica shares it), it issues the sync server's
//! certificate and, at enrolment, each edge node's client certificate.

use std::sync::Arc;

use outpost_protocol::sync::{SYNC_ALPN, SYNC_SERVER_NAME};
use rcgen::{
  BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
  ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::secrets::SecretsKey;
use crate::store::{Store, StoreError};

/// The store setting that holds the CA.
const CA_SETTING: &str = "certificate_authority";
/// How long certificates are valid: edges re-enrol to renew.
const VALIDITY_DAYS: i64 = 3650;

/// Why a certificate could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
  /// rcgen refused.
  #[error("certificate: {0}")]
  Rcgen(#[from] rcgen::Error),
  /// rustls or quinn refused the configuration.
  #[error("TLS configuration: {0}")]
  Tls(String),
  /// The stored CA is damaged.
  #[error("the stored certificate authority is unreadable: {0}")]
  Stored(String),
  /// The store failed.
  #[error(transparent)]
  Store(#[from] StoreError),
}

/// The CA as the store keeps it: its key sealed when a secrets key was
/// given at its creation, else (and in stores made before sealing) in the
/// clear.
#[derive(Serialize, Deserialize)]
struct StoredAuthority {
  cert_pem: String,
  #[serde(default, skip_serializing_if = "Option::is_none")]
  key_pem: Option<String>,
  #[serde(default, skip_serializing_if = "Option::is_none")]
  key_sealed: Option<String>,
}

/// The certificate authority.
pub struct Authority {
  cert_pem: String,
  cert_der: CertificateDer<'static>,
  issuer: Issuer<'static, KeyPair>,
}

impl Authority {
  /// The store's CA, made now if the store has none, its private key
  /// sealed with `secrets` when given. Two replicas starting at once end
  /// up with the same one.
  pub async fn load_or_create(
    store: &dyn Store,
    secrets: Option<&SecretsKey>,
  ) -> Result<Self, CertError> {
    let stored = match store.setting(CA_SETTING.into()).await? {
      Some(stored) => stored,
      None => {
        let mut made = new_authority()?;
        if let Some(secrets) = secrets {
          let key_pem = made.key_pem.take().unwrap_or_default();
          made.key_sealed = Some(
            secrets
              .seal(key_pem.as_bytes())
              .map_err(|e| CertError::Stored(e.to_string()))?,
          );
        } else {
          tracing::warn!("no secrets key: the CA's private key is stored in the clear");
        }
        let made = serde_json::to_string(&made).map_err(|e| CertError::Stored(e.to_string()))?;
        store.init_setting(CA_SETTING.into(), made).await?
      }
    };
    let stored: StoredAuthority =
      serde_json::from_str(&stored).map_err(|e| CertError::Stored(e.to_string()))?;
    let key_pem = match (&stored.key_sealed, stored.key_pem) {
      (Some(sealed), _) => {
        let secrets = secrets.ok_or_else(|| {
          CertError::Stored(
            "the CA's key is sealed: this control plane needs the secrets key".into(),
          )
        })?;
        let opened = secrets
          .open(sealed)
          .map_err(|e| CertError::Stored(format!("the CA's key: {e}")))?;
        String::from_utf8(opened)
          .map_err(|_| CertError::Stored("the CA's key is not PEM".into()))?
      }
      (None, Some(key_pem)) => key_pem,
      (None, None) => return Err(CertError::Stored("the stored CA has no key".into())),
    };
    let key = KeyPair::from_pem(&key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(&stored.cert_pem, key)?;
    let cert_der = CertificateDer::from_pem_slice(stored.cert_pem.as_bytes())
      .map_err(|e| CertError::Stored(e.to_string()))?;
    Ok(Self {
      cert_pem: stored.cert_pem,
      cert_der,
      issuer,
    })
  }

  /// The CA certificate, PEM, which edges trust for the sync server.
  pub fn ca_pem(&self) -> &str {
    &self.cert_pem
  }

  /// Issues an edge node's client certificate for the key in `csr_pem`,
  /// with `node_id` as its subject (whatever the request asked for).
  pub fn sign_edge(&self, csr_pem: &str, node_id: &str) -> Result<String, CertError> {
    let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
    let mut params = CertificateParams::new(vec![node_id.to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, node_id);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    set_validity(&mut params);
    csr.params = params;
    Ok(csr.signed_by(&self.issuer)?.pem())
  }

  /// The QUIC server configuration of the sync endpoint: a fresh server
  /// certificate from this CA, and only clients with a certificate from it.
  pub fn sync_server_config(&self) -> Result<quinn::ServerConfig, CertError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![SYNC_SERVER_NAME.to_owned()])?;
    params
      .distinguished_name
      .push(DnType::CommonName, SYNC_SERVER_NAME);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut params);
    let cert = params.signed_by(&key, &self.issuer)?;
    let chain = vec![cert.der().clone(), self.cert_der.clone()];
    let key =
      PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| CertError::Tls(e.to_string()))?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots
      .add(self.cert_der.clone())
      .map_err(|e| CertError::Tls(e.to_string()))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
      .build()
      .map_err(|e| CertError::Tls(e.to_string()))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
      .with_protocol_versions(&[&rustls::version::TLS13])
      .map_err(|e| CertError::Tls(e.to_string()))?
      .with_client_cert_verifier(verifier)
      .with_single_cert(chain, key)
      .map_err(|e| CertError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![SYNC_ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
      .map_err(|e| CertError::Tls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(std::time::Duration::from_secs(5)));
    config.transport_config(Arc::new(transport));
    Ok(config)
  }
}

fn new_authority() -> Result<StoredAuthority, CertError> {
  let key = KeyPair::generate()?;
  let mut params = CertificateParams::new(Vec::<String>::new())?;
  params
    .distinguished_name
    .push(DnType::CommonName, "Outpost control plane CA");
  params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
  params.key_usages = vec![
    KeyUsagePurpose::KeyCertSign,
    KeyUsagePurpose::CrlSign,
    KeyUsagePurpose::DigitalSignature,
  ];
  set_validity(&mut params);
  let cert = params.self_signed(&key)?;
  Ok(StoredAuthority {
    cert_pem: cert.pem(),
    key_pem: Some(key.serialize_pem()),
    key_sealed: None,
  })
}

/// Valid from a day ago (clocks drift) for [`VALIDITY_DAYS`].
fn set_validity(params: &mut CertificateParams) {
  let now = time::OffsetDateTime::now_utc();
  params.not_before = now - time::Duration::days(1);
  params.not_after = now + time::Duration::days(VALIDITY_DAYS);
}
