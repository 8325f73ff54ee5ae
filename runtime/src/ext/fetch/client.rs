//! The HTTP client behind a worker's outbound requests, whose DNS resolver
//! applies the worker's address policy to every address it hands out.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use deno_fetch::dns::{Resolve, Resolver, Resolving};
use deno_fetch::{Client, CreateHttpClientOptions, HttpClientCreateError};
use deno_tls::rustls::RootCertStore;
use hyper_util::client::legacy::connect::dns::Name;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::policy::{OutboundPolicy, REFUSAL_HINT, Refusal};

/// The `user-agent` of outbound requests that set none.
const USER_AGENT: &str = concat!("Outpost/", env!("CARGO_PKG_VERSION"));

/// A refusal raised while connecting: the resolver's error, found again in
/// the client's error chain to give the worker a clear message.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {}, a {} address, {REFUSAL_HINT}", refusal.ip, refusal.kind)]
pub struct ResolvedRefusal {
  host: String,
  refusal: Refusal,
}

impl ResolvedRefusal {
  /// Finds a refusal in the sources of `err`.
  pub fn find<'e>(err: &'e (dyn std::error::Error + 'static)) -> Option<&'e ResolvedRefusal> {
    let mut next = Some(err);
    while let Some(err) = next {
      if let Some(refusal) = err.downcast_ref::<ResolvedRefusal>() {
        return Some(refusal);
      }
      // io::Error hides a custom error from `source()`; look inside.
      if let Some(inner) = err
        .downcast_ref::<io::Error>()
        .and_then(|e| e.get_ref())
        .and_then(|e| e.downcast_ref::<ResolvedRefusal>())
      {
        return Some(inner);
      }
      next = err.source();
    }
    None
  }
}

/// Resolves with the system resolver, then refuses the name if any of its
/// addresses is one the policy refuses: a name that mixes public and private
/// addresses is refused whole, so a connection can never land on the latter.
#[derive(Debug)]
struct PolicyResolver {
  policy: Arc<OutboundPolicy>,
}

impl Resolve for PolicyResolver {
  fn resolve(&self, name: Name) -> Resolving {
    let policy = self.policy.clone();
    Box::pin(async move {
      let addrs = resolve_checked(&policy, name.as_str(), 0).await?;
      Ok(addrs.into_iter())
    })
  }
}

/// Resolves `host` (a name or an address) with the system resolver and
/// checks every address against `policy`, unless the policy names the host.
/// A refusal is an `io::Error` carrying a [`ResolvedRefusal`].
pub async fn resolve_checked(
  policy: &OutboundPolicy,
  host: &str,
  port: u16,
) -> io::Result<Vec<SocketAddr>> {
  let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
  if !policy.allows_host(host) {
    for addr in &addrs {
      policy.check_ip(addr.ip()).map_err(|refusal| {
        io::Error::other(ResolvedRefusal {
          host: host.to_owned(),
          refusal,
        })
      })?;
    }
  }
  Ok(addrs)
}

/// Why a host and port gave no address to connect to.
#[derive(Debug)]
pub enum AddressError {
  /// The policy refuses it; the text says why.
  Refused(String),
  /// The name did not resolve.
  Resolve(io::Error),
}

/// The addresses of `host` (a name, or an IP address, IPv6 in brackets or
/// bare) at `port`, each one allowed by `policy`.
pub async fn checked_addrs(
  policy: &OutboundPolicy,
  host: &str,
  port: u16,
) -> Result<Vec<SocketAddr>, AddressError> {
  let literal = host
    .strip_prefix('[')
    .and_then(|h| h.strip_suffix(']'))
    .unwrap_or(host);
  if let Ok(ip) = literal.parse::<std::net::IpAddr>() {
    policy
      .check_ip(ip)
      .map_err(|refusal| AddressError::Refused(refusal.to_string()))?;
    return Ok(vec![SocketAddr::new(ip, port)]);
  }
  resolve_checked(policy, host, port)
    .await
    .map_err(|err| match ResolvedRefusal::find(&err) {
      Some(refusal) => AddressError::Refused(refusal.to_string()),
      None => AddressError::Resolve(err),
    })
}

/// The environment variable naming a PEM file of CA certificates that
/// workers' outbound TLS trusts besides the web PKI (an internal CA).
pub const EXTRA_CA_CERTS_ENV: &str = "OUTPOST_EXTRA_CA_CERTS";

/// The web PKI roots and those of [`EXTRA_CA_CERTS_ENV`], read once per
/// process.
pub fn root_certs() -> RootCertStore {
  static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
  ROOTS
    .get_or_init(|| {
      let mut roots = deno_tls::create_default_root_cert_store();
      let Some(path) = std::env::var_os(EXTRA_CA_CERTS_ENV) else {
        return roots;
      };
      match CertificateDer::pem_file_iter(&path) {
        Ok(certs) => {
          for cert in certs {
            let added = cert
              .map_err(|e| e.to_string())
              .and_then(|cert| roots.add(cert).map_err(|e| e.to_string()));
            if let Err(err) = added {
              tracing::warn!(file = ?path, %err, "a certificate of {EXTRA_CA_CERTS_ENV} is not used");
            }
          }
        }
        Err(err) => tracing::warn!(file = ?path, %err, "{EXTRA_CA_CERTS_ENV} cannot be read"),
      }
      roots
    })
    .clone()
}

/// A client for one worker: its own connection pool, and `policy` applied
/// to every address it connects to.
pub fn create(policy: Arc<OutboundPolicy>) -> Result<Client, HttpClientCreateError> {
  deno_fetch::create_http_client(
    USER_AGENT,
    CreateHttpClientOptions {
      root_cert_store: Some(root_certs()),
      dns_resolver: Resolver::custom(Arc::new(PolicyResolver { policy })),
      ..CreateHttpClientOptions::default()
    },
  )
}
