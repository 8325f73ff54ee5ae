//! The HTTP client behind a worker's outbound requests, whose DNS resolver
//! applies the worker's address policy to every address it hands out.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use deno_fetch::dns::{Resolve, Resolver, Resolving};
use deno_fetch::{Client, CreateHttpClientOptions, HttpClientCreateError};
use deno_tls::rustls::RootCertStore;
use hyper_util::client::legacy::connect::dns::Name;

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

/// The web PKI roots, parsed once per process.
fn root_certs() -> RootCertStore {
  static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
  ROOTS
    .get_or_init(deno_tls::create_default_root_cert_store)
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
