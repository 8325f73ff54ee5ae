//! The node's identity with the control plane: enrolment with a one-time
//! token, the certificate it earns, saved as `node.json` (0600), and the
//! QUIC client configuration it opens the sync connection with.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use outpost_protocol::sync::SYNC_ALPN;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::control::{ControlError, disk};

/// Who this node is to the control plane, from enrolment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeIdentity {
  /// The node's id, the subject of its certificate.
  pub id: String,
  /// Where the sync endpoint is.
  pub sync_address: String,
  /// The node's client certificate, PEM.
  pub certificate: String,
  /// The node's private key, PEM.
  pub key: String,
  /// The control plane's CA certificate, PEM.
  pub ca: String,
}

impl NodeIdentity {
  fn path(data: &Path) -> PathBuf {
    data.join("node.json")
  }

  /// The identity saved in `data`, if the node has enrolled.
  pub fn load(data: &Path) -> Result<Option<Self>, ControlError> {
    let path = Self::path(data);
    match std::fs::read(&path) {
      Ok(bytes) => serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|err| disk(&path)(std::io::Error::other(err))),
      Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
      Err(err) => Err(disk(&path)(err)),
    }
  }

  /// Enrols with the control plane whose API is at `control_url`, using the
  /// one-time `join_token`, and saves the identity in `data`.
  pub async fn enrol(
    control_url: &str,
    join_token: &str,
    name: &str,
    data: &Path,
  ) -> Result<Self, ControlError> {
    let cert = |err: rcgen::Error| ControlError::Cert(err.to_string());
    let key = rcgen::KeyPair::generate().map_err(cert)?;
    let csr = rcgen::CertificateParams::new(vec![name.to_owned()])
      .and_then(|params| params.serialize_request(&key))
      .and_then(|csr| csr.pem())
      .map_err(cert)?;
    let base = control_url.trim_end_matches('/').trim_end_matches("/v1");
    let response = reqwest::Client::new()
      .post(format!("{base}/v1/edges/enroll"))
      .bearer_auth(join_token)
      .body(serde_json::json!({ "name": name, "csr": csr }).to_string())
      .timeout(Duration::from_secs(30))
      .send()
      .await
      .map_err(|err| ControlError::Enrol(format!("{base}: {err}")))?;
    let status = response.status();
    let body: serde_json::Value = serde_json::from_slice(
      &response
        .bytes()
        .await
        .map_err(|e| ControlError::Enrol(e.to_string()))?,
    )
    .map_err(|err| ControlError::Enrol(format!("{base} answered {status} without JSON: {err}")))?;
    if !status.is_success() {
      let message = body["error"]["message"]
        .as_str()
        .unwrap_or("no reason given");
      return Err(ControlError::Enrol(format!(
        "{base} refused ({status}): {message}"
      )));
    }
    let field = |name: &str| {
      body[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ControlError::Enrol(format!("the answer has no {name:?}")))
    };
    let identity = Self {
      id: field("id")?,
      sync_address: field("sync_address")?,
      certificate: field("certificate")?,
      key: key.serialize_pem(),
      ca: field("ca")?,
    };
    identity.save(data)?;
    Ok(identity)
  }

  fn save(&self, data: &Path) -> Result<(), ControlError> {
    let path = Self::path(data);
    let bytes =
      serde_json::to_vec_pretty(self).map_err(|e| disk(&path)(std::io::Error::other(e)))?;
    write_private(&path, &bytes).map_err(disk(&path))
  }

  /// The QUIC client configuration: this node's certificate, and the
  /// control plane's CA as the only root.
  pub(crate) fn client_config(&self) -> Result<quinn::ClientConfig, ControlError> {
    let tls = |err: String| ControlError::Cert(err);
    let ca = CertificateDer::from_pem_slice(self.ca.as_bytes()).map_err(|e| tls(e.to_string()))?;
    let cert = CertificateDer::from_pem_slice(self.certificate.as_bytes())
      .map_err(|e| tls(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(self.key.as_bytes()).map_err(|e| tls(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).map_err(|e| tls(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
      .with_protocol_versions(&[&rustls::version::TLS13])
      .map_err(|e| tls(e.to_string()))?
      .with_root_certificates(roots)
      .with_client_auth_cert(vec![cert], key)
      .map_err(|e| tls(e.to_string()))?;
    config.alpn_protocols = vec![SYNC_ALPN.to_vec()];
    let quic =
      quinn::crypto::rustls::QuicClientConfig::try_from(config).map_err(|e| tls(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_millis(1500)));
    transport.max_idle_timeout(Some(
      Duration::from_secs(5)
        .try_into()
        .map_err(|e: quinn::VarIntBoundsExceeded| tls(e.to_string()))?,
    ));
    client.transport_config(Arc::new(transport));
    Ok(client)
  }
}

/// Writes `bytes` to `path` readable by the owner only, atomically.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
  let temporary = path.with_extension("tmp");
  {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.sync_all()?;
  }
  std::fs::rename(&temporary, path)
}
