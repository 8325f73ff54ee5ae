//! TLS at the edge: certificates chosen per host name by SNI, from PEM
//! files, reloaded without a restart; ALPN h2 and http/1.1; TLS 1.2 and
//! 1.3 only.
//!
//! Each certificate serves the DNS names in its subject alternative names
//! (its common name when it has none), wildcards (`*.example.com`)
//! included. A ClientHello naming no host served here fails the
//! handshake, and is logged. A ClientHello that names a host served here
//! also calls the resolver's hello hook first, which the server uses to
//! start warming the isolate of the worker routed there while the
//! handshake runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// ALPN protocols offered, most preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A certificate chain and its key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
  /// The certificate chain, leaf first.
  pub cert: PathBuf,
  /// The private key (PKCS#8, PKCS#1 or SEC1).
  pub key: PathBuf,
}

/// Why certificates could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
  /// A file could not be read or holds no usable PEM.
  #[error("{path}: {why}")]
  File {
    /// The file.
    path: PathBuf,
    /// What is wrong.
    why: String,
  },
  /// The key does not fit the certificate, or rustls refused them.
  #[error("{cert}: {why}")]
  Pair {
    /// The certificate file.
    cert: PathBuf,
    /// What is wrong.
    why: String,
  },
  /// No certificate names any host.
  #[error("no certificate names a DNS host")]
  NoHosts,
}

/// Host names to certificates.
#[derive(Debug, Default)]
struct CertTable {
  exact: HashMap<String, Arc<CertifiedKey>>,
  /// By the suffix after `*.`.
  wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl CertTable {
  fn find(&self, host: &str) -> Option<Arc<CertifiedKey>> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if let Some(key) = self.exact.get(&host) {
      return Some(key.clone());
    }
    let (_, parent) = host.split_once('.')?;
    self.wildcard.get(parent).cloned()
  }

  fn hosts(&self) -> usize {
    self.exact.len() + self.wildcard.len()
  }
}

/// Called with the host name of each ClientHello served here.
pub type HelloHook = Arc<dyn Fn(&str) + Send + Sync>;

/// Picks the certificate for each handshake by SNI; reloadable.
pub struct SniResolver {
  files: Vec<CertFiles>,
  table: RwLock<Arc<CertTable>>,
  /// Certificates the control plane pushed, by the host they were added
  /// for; they win over files for that host.
  pushed: RwLock<Arc<CertTable>>,
  on_hello: RwLock<Option<HelloHook>>,
}

impl std::fmt::Debug for SniResolver {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("SniResolver")
      .field("files", &self.files)
      .finish_non_exhaustive()
  }
}

impl SniResolver {
  /// Loads every pair of `files`; any that fails fails the whole.
  pub fn load(files: Vec<CertFiles>) -> Result<Self, TlsError> {
    let table = load_table(&files)?;
    Ok(Self::with_table(files, table))
  }

  /// A resolver with no certificates of its own, for a node whose
  /// certificates all come from the control plane.
  pub fn pushed_only() -> Self {
    Self::with_table(Vec::new(), CertTable::default())
  }

  fn with_table(files: Vec<CertFiles>, table: CertTable) -> Self {
    Self {
      files,
      table: RwLock::new(Arc::new(table)),
      pushed: RwLock::default(),
      on_hello: RwLock::new(None),
    }
  }

  /// Serves exactly `certificates` (host, chain PEM, key PEM) besides the
  /// files' from now on. One that does not load is logged and left out.
  pub fn set_pushed(&self, certificates: &[(String, String, String)]) {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let mut table = CertTable::default();
    for (host, cert, key) in certificates {
      match pushed_pair(cert, key, &provider) {
        Ok(certified) => {
          let certified = Arc::new(certified);
          match host.strip_prefix("*.") {
            Some(parent) => table.wildcard.insert(parent.to_owned(), certified),
            None => table.exact.insert(host.clone(), certified),
          };
        }
        Err(why) => tracing::error!(host, "pushed certificate not served: {why}"),
      }
    }
    if let Ok(mut pushed) = self.pushed.write() {
      *pushed = Arc::new(table);
    }
  }

  /// Reads the files again and swaps the new certificates in; on error
  /// the ones loaded before keep serving. Returns how many host names are
  /// served.
  pub fn reload(&self) -> Result<usize, TlsError> {
    if self.files.is_empty() {
      return Ok(0);
    }
    let table = load_table(&self.files)?;
    let hosts = table.hosts();
    if let Ok(mut current) = self.table.write() {
      *current = Arc::new(table);
    }
    Ok(hosts)
  }

  /// The files the certificates come from, to watch.
  pub fn files(&self) -> &[CertFiles] {
    &self.files
  }

  /// Calls `hook` with the host name of each ClientHello served here.
  pub fn set_hello_hook(&self, hook: HelloHook) {
    if let Ok(mut current) = self.on_hello.write() {
      *current = Some(hook);
    }
  }

  /// A rustls server config resolving certificates through `self`.
  pub fn server_config(self: &Arc<Self>) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // The provider supports both versions, so this cannot fail.
    let builder = rustls::ServerConfig::builder_with_provider(provider)
      .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
      .unwrap_or_else(|_| rustls::ServerConfig::builder());
    let mut config = builder
      .with_no_client_auth()
      .with_cert_resolver(self.clone());
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    config
  }
}

impl ResolvesServerCert for SniResolver {
  fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
    let Some(host) = hello.server_name() else {
      tracing::warn!("TLS handshake refused: the client named no host (SNI)");
      return None;
    };
    let pushed = self.pushed.read().ok()?.clone();
    let table = self.table.read().ok()?.clone();
    let Some(key) = pushed.find(host).or_else(|| table.find(host)) else {
      tracing::warn!(
        sni = host,
        "TLS handshake refused: no certificate for this host"
      );
      return None;
    };
    if let Some(hook) = self.on_hello.read().ok().and_then(|hook| hook.clone()) {
      hook(host);
    }
    Some(key)
  }
}

fn load_table(files: &[CertFiles]) -> Result<CertTable, TlsError> {
  let provider = rustls::crypto::aws_lc_rs::default_provider();
  let mut table = CertTable::default();
  for pair in files {
    let (key, hosts) = load_pair(pair, &provider)?;
    let key = Arc::new(key);
    for host in hosts {
      match host.strip_prefix("*.") {
        Some(parent) => table.wildcard.insert(parent.to_owned(), key.clone()),
        None => table.exact.insert(host, key.clone()),
      };
    }
  }
  if table.hosts() == 0 {
    return Err(TlsError::NoHosts);
  }
  Ok(table)
}

/// A pushed certificate and key, from PEM text.
fn pushed_pair(cert: &str, key: &str, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
  let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| e.to_string())?;
  let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| e.to_string())?;
  CertifiedKey::from_der(chain, key, provider).map_err(|e| e.to_string())
}

fn file_error(path: &Path, why: impl std::fmt::Display) -> TlsError {
  TlsError::File {
    path: path.to_owned(),
    why: why.to_string(),
  }
}

/// A certificate and key, and the host names the certificate names.
fn load_pair(
  pair: &CertFiles,
  provider: &CryptoProvider,
) -> Result<(CertifiedKey, Vec<String>), TlsError> {
  let chain = CertificateDer::pem_file_iter(&pair.cert)
    .map_err(|e| file_error(&pair.cert, e))?
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| file_error(&pair.cert, e))?;
  let Some(leaf) = chain.first() else {
    return Err(file_error(&pair.cert, "no CERTIFICATE block"));
  };
  let (hosts, _) =
    outpost_protocol::tls::served_names(leaf).map_err(|why| file_error(&pair.cert, why))?;
  let key = PrivateKeyDer::from_pem_file(&pair.key).map_err(|e| file_error(&pair.key, e))?;
  let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::Pair {
    cert: pair.cert.clone(),
    why: format!("does not pair with {}: {e}", pair.key.display()),
  })?;
  Ok((certified, hosts))
}

/// Reloads `resolver` whenever one of its files changes, until `shutdown`
/// resolves. A reload that fails is logged and the certificates loaded
/// before keep serving.
pub async fn follow_files(
  resolver: Arc<SniResolver>,
  shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), crate::local::WatchError> {
  let mut events = crate::local::FileEvents::new()?;
  let mut watched = std::collections::BTreeSet::new();
  for pair in resolver.files() {
    for file in [&pair.cert, &pair.key] {
      // Watch the folder: editors and cert tools replace files by rename.
      let dir = file.parent().unwrap_or(Path::new(".")).to_owned();
      if watched.insert(dir.clone()) {
        events.watch(&dir, notify::RecursiveMode::NonRecursive)?;
      }
    }
  }
  let ours: Vec<PathBuf> = resolver
    .files()
    .iter()
    .flat_map(|pair| [pair.cert.clone(), pair.key.clone()])
    .collect();
  tokio::pin!(shutdown);
  loop {
    let changed = tokio::select! {
      changed = events.next_batch() => changed,
      () = &mut shutdown => return Ok(()),
    };
    if changed
      .iter()
      .any(|path| ours.iter().any(|file| same_file(path, file)))
    {
      reload_logged(&resolver);
    }
  }
}

/// Reloads, logging the outcome.
pub fn reload_logged(resolver: &SniResolver) {
  match resolver.reload() {
    Ok(hosts) => tracing::info!(hosts, "TLS certificates reloaded"),
    Err(err) => tracing::error!("TLS certificates not reloaded, the previous ones serve on: {err}"),
  }
}

fn same_file(a: &Path, b: &Path) -> bool {
  a == b
    || (a.file_name() == b.file_name()
      && a.parent().map(std::fs::canonicalize).and_then(Result::ok)
        == b.parent().map(std::fs::canonicalize).and_then(Result::ok))
}
