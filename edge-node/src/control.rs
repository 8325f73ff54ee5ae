//! An edge node fed by the control plane (`outpost edge --control`): the
//! sync connection (with the identity enrolment gave it: `identity.rs`),
//! and the bundles and routing table kept on disk so
//! the node serves at once after a restart, control plane or not.
//!
//! Disk layout under the data folder:
//! - `node.json`: the node's identity (id, certificate, key, CA), 0600;
//! - `bundles/` and `assets/`: see [`crate::bundle_store`];
//! - `state.json`: the last [`State`] applied.
//!
//! A restart serves what is on disk and checks it first: a damaged bundle
//! or asset is discarded and its workers wait for the control plane, which
//! the node then asks for the whole state again; a damaged `state.json`
//! is ignored the same way.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use outpost_protocol::KvBackend;
use outpost_protocol::bundle::is_sha256_hex;
use outpost_protocol::sync::{
  BundleReply, ControlMessage, EdgeMessage, SYNC_SERVER_NAME, State, StreamOpen, read_frame,
  read_raw, write_frame,
};
use outpost_runtime::resolve::{ModuleSpecifier, RecordedResolver};
use outpost_runtime::{OutboundPolicy, WorkerBundle, WorkerEnv, WorkerVersion};

use crate::assets::{AssetCache, AssetSite};
use crate::bundle_store::{BundleStore, Check};
use crate::config::{kv_env, worker_limits};
use crate::dispatch::Dispatcher;
use crate::firings::EdgeFirings;
pub use crate::identity::NodeIdentity;
use crate::identity::write_private;
use crate::kv::EdgeKv;
use crate::routes::{RouteTable, Routes};
use crate::services::ServiceRouter;
use crate::tail::TailHub;
use crate::tls::SniResolver;
use crate::traffic::SyncStatus;

/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The first wait after a connection fails.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// How long a version no longer routed to keeps its isolate: the time
/// between a request reading the routing table and reaching the executor
/// is microseconds, even on a loaded node.
const RETIRE_GRACE: Duration = Duration::from_secs(1);

/// Why enrolment, the sync connection or applying a state failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
  /// Reading or writing the data folder failed.
  #[error("{path}: {source}")]
  Disk {
    /// The file or folder.
    path: PathBuf,
    /// The I/O error.
    source: std::io::Error,
  },
  /// The control plane refused or could not be reached.
  #[error("enrolment: {0}")]
  Enrol(String),
  /// A certificate or key could not be made or read.
  #[error("certificates: {0}")]
  Cert(String),
  /// The QUIC connection failed.
  #[error("sync connection: {0}")]
  Connection(String),
  /// A message on the sync connection failed.
  #[error(transparent)]
  Frame(#[from] outpost_protocol::sync::FrameError),
  /// A bundle was missing, damaged or did not match its hash.
  #[error("bundle {hash}: {why}")]
  Bundle {
    /// The bundle's hash.
    hash: String,
    /// What is wrong.
    why: String,
  },
  /// A worker version could not be started.
  #[error("worker {worker}: {why}")]
  Worker {
    /// The executor name of the version.
    worker: String,
    /// What failed.
    why: String,
  },
}

pub(crate) fn disk(path: &Path) -> impl FnOnce(std::io::Error) -> ControlError + '_ {
  move |source| ControlError::Disk {
    path: path.to_owned(),
    source,
  }
}

/// Serves what the control plane deploys, from disk first.
pub struct ControlledNode {
  data: PathBuf,
  /// Bundles and assets on disk.
  store: BundleStore,
  dispatcher: Arc<Dispatcher>,
  routes: Routes,
  outbound: OutboundPolicy,
  /// The node's KV cache, which workers' KV bindings use.
  kv: EdgeKv,
  /// Executor names of the versions installed now.
  installed: BTreeSet<String>,
  /// The same names, for retirements that run after [`RETIRE_GRACE`]:
  /// holding it, a retirement never removes a version installed again
  /// meanwhile, nor an installation races one.
  live: Arc<tokio::sync::Mutex<BTreeSet<String>>>,
  /// The epoch being served.
  epoch: u64,
  /// The sync connection's state, for `/metrics`.
  sync: Arc<SyncStatus>,
  /// Where tailed workers' events are collected, if anywhere.
  tail: Option<Arc<TailHub>>,
  /// Where pushed certificates are served, if the node serves HTTPS.
  tls: Option<Arc<SniResolver>>,
  /// Cron firings handed to the node.
  firings: Arc<EdgeFirings>,
  /// Static assets of the installed versions, by executor name.
  sites: BTreeMap<String, Arc<AssetSite>>,
  /// Asset bytes kept in memory, shared by every version.
  asset_cache: AssetCache,
}

impl ControlledNode {
  /// A node keeping its bundles and state in `data`, serving through
  /// `dispatcher` and `routes`; `outbound` is what the node opens to every
  /// worker's `fetch()`; `kv` serves the workers' KV bindings.
  pub fn new(
    data: PathBuf,
    dispatcher: Arc<Dispatcher>,
    routes: Routes,
    outbound: OutboundPolicy,
    kv: EdgeKv,
  ) -> Self {
    Self {
      store: BundleStore::new(data.clone()),
      data,
      firings: EdgeFirings::new(dispatcher.clone()),
      sites: BTreeMap::new(),
      asset_cache: AssetCache::default(),
      dispatcher,
      routes,
      outbound,
      kv,
      installed: BTreeSet::new(),
      live: Arc::default(),
      epoch: 0,
      sync: Arc::default(),
      tail: None,
      tls: None,
    }
  }

  /// Serves the certificates the control plane pushes through `tls`.
  pub fn with_tls(mut self, tls: Arc<SniResolver>) -> Self {
    self.tls = Some(tls);
    self
  }

  /// Sends tailed workers' events to the control plane through `tail`.
  pub fn with_tail(mut self, tail: Arc<TailHub>) -> Self {
    self.tail = Some(tail);
    self
  }

  /// The sync connection's state, updated as it changes.
  pub fn sync_status(&self) -> Arc<SyncStatus> {
    self.sync.clone()
  }

  /// The epoch being served (0 before the first state).
  pub fn epoch(&self) -> u64 {
    self.epoch
  }

  /// Serves the state saved by the last run, if there is one: no control
  /// plane needed. Workers whose bundle or assets are damaged on disk are
  /// left out (and their files discarded), and then the next state from
  /// the control plane is applied in full, fetching them again. Returns
  /// the number of workers served.
  pub async fn restore(&mut self) -> Result<usize, ControlError> {
    let path = self.data.join("state.json");
    let bytes = match std::fs::read(&path) {
      Ok(bytes) => bytes,
      Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
      Err(err) => return Err(disk(&path)(err)),
    };
    let mut state: State = match serde_json::from_slice(&bytes) {
      Ok(state) => state,
      Err(err) => {
        tracing::warn!(path = %path.display(), "damaged, ignored until the control plane answers: {err}");
        return Ok(0);
      }
    };
    let damaged = self.leave_out_damaged(&mut state);
    self.apply(&state).await?;
    if damaged > 0 {
      // Not the saved epoch: the control plane's state, even the same
      // epoch, must be applied to bring the damaged workers back.
      self.epoch = 0;
      self.sync.epoch.store(0, Ordering::Relaxed);
    }
    Ok(state.workers.len())
  }

  /// Removes from `state` every worker with a version whose bundle or
  /// assets are damaged on disk, and the routes to it; discards the
  /// damaged files. Returns how many workers were removed.
  fn leave_out_damaged(&self, state: &mut State) -> usize {
    let mut damaged = BTreeSet::new();
    for deployment in &state.workers {
      for version in &deployment.versions {
        let why = match self.store.load(&version.hash) {
          Ok(bundle) => bundle
            .assets
            .map(|manifest| self.store.unusable_assets(&manifest, Check::Hash))
            .filter(|unusable| !unusable.is_empty())
            .map(|unusable| format!("{} asset(s) missing or damaged", unusable.len())),
          Err(err) => {
            self.store.discard(&version.hash);
            Some(err.to_string())
          }
        };
        if let Some(why) = why {
          tracing::warn!(
            worker = deployment.worker,
            version = version.number,
            "not served from disk until fetched again: {why}"
          );
          damaged.insert(deployment.worker.clone());
        }
      }
    }
    state.workers.retain(|w| !damaged.contains(&w.worker));
    state.routes.retain(|r| !damaged.contains(&r.worker));
    damaged.len()
  }

  /// Installs every version `state` deploys (their bundles must be on
  /// disk), swaps in its routes and retires versions no longer deployed.
  /// On error nothing changes.
  async fn apply(&mut self, state: &State) -> Result<(), ControlError> {
    let mut live = self.live.clone().lock_owned().await;
    let mut versions: BTreeMap<String, Vec<(u8, String)>> = BTreeMap::new();
    let mut wanted = BTreeSet::new();
    for deployment in &state.workers {
      for version in &deployment.versions {
        let name = format!("{}@{}", deployment.worker, version.number);
        if !self.installed.contains(&name) {
          self.install(&name, &version.hash, &version.secrets).await?;
        }
        versions
          .entry(deployment.worker.clone())
          .or_default()
          .push((version.percent, name.clone()));
        wanted.insert(name);
      }
    }
    let routes = state
      .routes
      .iter()
      .map(|route| (route.pattern.clone(), route.worker.clone()));
    self.sites.retain(|name, _| wanted.contains(name));
    let mut table = RouteTable::deployed(routes, versions);
    for (name, site) in &self.sites {
      table = table.with_assets(name.clone(), site.clone());
    }
    // Routes first, so no request goes to a version about to be retired.
    self.routes.replace(table);
    if let Some(tls) = &self.tls {
      let certificates: Vec<_> = state
        .certificates
        .iter()
        .map(|c| (c.host.clone(), c.cert_pem.clone(), c.key_pem.clone()))
        .collect();
      tls.set_pushed(&certificates);
    }
    let gone: Vec<String> = self.installed.difference(&wanted).cloned().collect();
    live.clone_from(&wanted);
    drop(live);
    self.installed = wanted;
    self.retire_later(gone);
    self.collect_unused(state);
    self.epoch = state.epoch;
    self.sync.epoch.store(state.epoch, Ordering::Relaxed);
    Ok(())
  }

  /// Removes versions no longer routed to from their executors, once
  /// [`RETIRE_GRACE`] has passed: a request that read the previous routing
  /// table just before it was swapped may still be on its way to one.
  fn retire_later(&self, gone: Vec<String>) {
    if gone.is_empty() {
      return;
    }
    let live = self.live.clone();
    let dispatcher = self.dispatcher.clone();
    tokio::spawn(async move {
      tokio::time::sleep(RETIRE_GRACE).await;
      let live = live.lock().await;
      for name in gone.iter().filter(|name| !live.contains(*name)) {
        let _ = dispatcher.executor_for(name).remove(name).await;
      }
    });
  }

  /// Removes the bundles and assets no version `state` deploys needs. A
  /// retired version's isolate may still drain: its modules are in memory,
  /// and its code cache only ever misses.
  fn collect_unused(&self, state: &State) {
    let bundles: BTreeSet<&str> = state
      .workers
      .iter()
      .flat_map(|w| w.versions.iter().map(|v| v.hash.as_str()))
      .collect();
    let assets: BTreeSet<&str> = self
      .sites
      .values()
      .flat_map(|site| site.manifest().files.values().map(|f| f.hash.as_str()))
      .collect();
    let (bundles, assets) = self.store.collect(&bundles, &assets);
    if bundles + assets > 0 {
      tracing::info!(bundles, assets, "removed files no deployed version needs");
    }
  }

  /// Keeps `state` as the one to serve after a restart.
  fn save(&self, state: &State) -> Result<(), ControlError> {
    let path = self.data.join("state.json");
    let bytes = serde_json::to_vec(state).map_err(|e| disk(&path)(std::io::Error::other(e)))?;
    write_private(&path, &bytes).map_err(disk(&path))
  }

  /// Stages the version in bundle `hash` as `name`, with `secrets` bound
  /// beside its vars, started on its first request.
  async fn install(
    &mut self,
    name: &str,
    hash: &str,
    secrets: &BTreeMap<String, String>,
  ) -> Result<(), ControlError> {
    let bundle = self.store.load(hash)?;
    let dir = self.store.dir(hash);
    let failed = |why: String| ControlError::Worker {
      worker: name.to_owned(),
      why,
    };
    let limits = worker_limits(
      &bundle.limits,
      bundle.allow_eval,
      &bundle.outbound_allow,
      &self.outbound,
    )
    .map_err(|e| failed(e.to_string()))?;
    let modules_dir = dir.join("modules");
    let resolver = recorded_resolver(&modules_dir, &bundle.imports).map_err(&failed)?;
    let modules = WorkerBundle::load_with(&modules_dir.join(&bundle.main), &resolver)
      .map_err(|e| failed(e.to_string()))?
      .with_code_cache_dir(dir.join("code-cache"));
    let site = bundle.assets.clone().map(|manifest| {
      let missing = crate::assets::missing_from(&manifest, &self.store.assets_dir());
      if !missing.is_empty() {
        tracing::warn!(
          worker = name,
          missing = missing.len(),
          "assets missing from disk"
        );
      }
      Arc::new(AssetSite::from_cache_dir(
        manifest,
        self.store.assets_dir(),
        self.asset_cache.clone(),
      ))
    });
    let nodejs_compat = bundle.nodejs_compat();
    let mut vars = bundle.vars;
    vars.extend(
      secrets
        .iter()
        .map(|(name, value)| (name.clone(), value.clone())),
    );
    let version = WorkerVersion {
      bundle: Arc::new(modules),
      env: Arc::new(WorkerEnv {
        nodejs_compat,
        vars,
        kv: kv_env(&bundle.kv_namespaces, &self.kv_backend()),
        assets: site.as_ref().and_then(crate::assets::env_binding),
        services: ServiceRouter::bindings(
          &bundle.services,
          &bundle.dispatch_namespaces,
          &self.routes,
          &self.dispatcher,
        ),
      }),
      limits,
    };
    self
      .dispatcher
      .executor_for(name)
      .stage(name, version)
      .await
      .map_err(|e| failed(e.to_string()))?;
    if let Some(site) = site {
      self.sites.insert(name.to_owned(), site);
    }
    Ok(())
  }

  fn kv_backend(&self) -> Arc<dyn KvBackend> {
    Arc::new(self.kv.clone())
  }

  /// Follows the control plane until `shutdown` resolves: connects (again
  /// after any failure, with backoff and jitter), fetches the bundles each
  /// new state needs, applies it and acks it.
  pub async fn follow(
    mut self,
    identity: NodeIdentity,
    shutdown: impl std::future::Future<Output = ()>,
  ) {
    tokio::pin!(shutdown);
    let mut backoff = FIRST_BACKOFF;
    loop {
      let session = self.session(&identity);
      let result = tokio::select! {
        () = &mut shutdown => return,
        result = session => result,
      };
      match result {
        Ok(()) => backoff = FIRST_BACKOFF,
        Err(err) => tracing::warn!(
          epoch = self.epoch,
          "control plane: {err}; serving epoch {} meanwhile",
          self.epoch
        ),
      }
      let wait = jitter(backoff);
      backoff = (backoff * 2).min(MAX_BACKOFF);
      tokio::select! {
        () = &mut shutdown => return,
        () = tokio::time::sleep(wait) => {}
      }
    }
  }

  /// One connection, until it fails.
  async fn session(&mut self, identity: &NodeIdentity) -> Result<(), ControlError> {
    let connection_error = |err: String| ControlError::Connection(err);
    let address = tokio::net::lookup_host(&identity.sync_address)
      .await
      .map_err(|e| connection_error(format!("{}: {e}", identity.sync_address)))?
      .next()
      .ok_or_else(|| connection_error(format!("{} resolves to nothing", identity.sync_address)))?;
    let bind: std::net::SocketAddr = if address.is_ipv6() {
      "[::]:0"
    } else {
      "0.0.0.0:0"
    }
    .parse()
    .map_err(|e: std::net::AddrParseError| connection_error(e.to_string()))?;
    let mut endpoint =
      quinn::Endpoint::client(bind).map_err(|e| connection_error(e.to_string()))?;
    endpoint.set_default_client_config(identity.client_config()?);
    let connection = endpoint
      .connect(address, SYNC_SERVER_NAME)
      .map_err(|e| connection_error(e.to_string()))?
      .await
      .map_err(|e| connection_error(e.to_string()))?;
    tracing::info!(node = %identity.id, control = %address, epoch = self.epoch, "connected to the control plane");
    let (mut send, mut recv) = connection
      .open_bi()
      .await
      .map_err(|e| connection_error(e.to_string()))?;
    write_frame(&mut send, &StreamOpen::Control { epoch: self.epoch }).await?;
    self.kv.set_link(Some(connection.clone()));
    if let Some(tail) = &self.tail {
      tail.set_link(Some(connection.clone()));
    }
    self.sync.connected.store(true, Ordering::Relaxed);
    let firings = self.firings.clone();
    let resend_on = connection.clone();
    tokio::spawn(async move { firings.resend(&resend_on).await });
    let followed = self.follow_stream(&connection, &mut send, &mut recv).await;
    self.sync.connected.store(false, Ordering::Relaxed);
    self.kv.set_link(None);
    if let Some(tail) = &self.tail {
      tail.set_link(None);
    }
    followed
  }

  /// Applies each state the control stream brings, and KV invalidations.
  async fn follow_stream(
    &mut self,
    connection: &quinn::Connection,
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
  ) -> Result<(), ControlError> {
    while let Some(message) = read_frame::<_, ControlMessage>(recv).await? {
      let state = match message {
        ControlMessage::State(state) => state,
        ControlMessage::KvInvalidate { namespace, keys } => {
          self.kv.invalidate(&namespace, keys);
          continue;
        }
        ControlMessage::KvFlush => {
          self.kv.flush();
          continue;
        }
        ControlMessage::Tail { workers } => {
          if let Some(tail) = &self.tail {
            tail.set_tailed(workers);
          }
          continue;
        }
        ControlMessage::Fire(firing) => {
          self.firings.handle(firing, connection.clone());
          continue;
        }
      };
      self
        .sync
        .announced
        .fetch_max(state.epoch, Ordering::Relaxed);
      if state.epoch <= self.epoch {
        continue;
      }
      let hashes: Vec<String> = state
        .workers
        .iter()
        .flat_map(|worker| &worker.versions)
        .map(|version| version.hash.clone())
        .collect();
      for hash in hashes {
        let bundle = match self.store.load(&hash) {
          Ok(bundle) => bundle,
          Err(err) => {
            if self.store.dir(&hash).exists() {
              tracing::warn!(bundle = %hash, "damaged on disk, fetching it again: {err}");
              self.store.discard(&hash);
            }
            self.fetch_bundle(connection, &hash).await?;
            self.store.load(&hash)?
          }
        };
        // Every asset on disk before the version serves.
        if let Some(manifest) = bundle.assets {
          let fetched = fetch_assets(connection, &manifest, &self.store).await?;
          if fetched > 0 {
            tracing::info!(bundle = %hash, fetched, "assets fetched");
          }
        }
      }
      self.apply(&state).await?;
      self.save(&state)?;
      tracing::info!(
        epoch = state.epoch,
        workers = state.workers.len(),
        routes = state.routes.len(),
        "serving"
      );
      write_frame(send, &EdgeMessage::Ack { epoch: state.epoch }).await?;
    }
    Err(ControlError::Connection(
      "the control plane closed the sync stream".into(),
    ))
  }

  async fn fetch_bundle(
    &self,
    connection: &quinn::Connection,
    hash: &str,
  ) -> Result<(), ControlError> {
    if !is_sha256_hex(hash) {
      return Err(ControlError::Bundle {
        hash: hash.to_owned(),
        why: "not a sha256 hash".into(),
      });
    }
    let missing = |why: &str| ControlError::Bundle {
      hash: hash.to_owned(),
      why: why.to_owned(),
    };
    let open = StreamOpen::Bundle {
      hash: hash.to_owned(),
    };
    let bytes = fetch_stored(connection, &open)
      .await?
      .ok_or_else(|| missing("the control plane has no such bundle"))?;
    self.store.store(hash, &bytes)
  }
}

/// Asks for a stored object (a bundle, an asset) on a stream of its own:
/// its bytes, or `None` if the control plane has none.
async fn fetch_stored(
  connection: &quinn::Connection,
  open: &StreamOpen,
) -> Result<Option<Vec<u8>>, ControlError> {
  let ended = || ControlError::Connection("a fetch stream ended before its answer".into());
  let (mut send, mut recv) = connection
    .open_bi()
    .await
    .map_err(|e| ControlError::Connection(e.to_string()))?;
  write_frame(&mut send, open).await?;
  let _ = send.finish();
  match read_frame::<_, BundleReply>(&mut recv).await? {
    Some(BundleReply::Found) => Ok(Some(read_raw(&mut recv).await?.ok_or_else(ended)?)),
    Some(BundleReply::NotFound) => Ok(None),
    None => Err(ended()),
  }
}

/// Fetches the assets of `manifest` missing from `store` or damaged there,
/// each checked against its hash; returns how many were fetched.
async fn fetch_assets(
  connection: &quinn::Connection,
  manifest: &outpost_protocol::assets::AssetManifest,
  store: &BundleStore,
) -> Result<usize, ControlError> {
  let dir = &store.assets_dir();
  let missing = store.unusable_assets(manifest, Check::Size);
  for hash in &missing {
    let bad = |why: &str| ControlError::Bundle {
      hash: hash.clone(),
      why: format!("asset: {why}"),
    };
    let open = StreamOpen::Asset { hash: hash.clone() };
    let bytes = fetch_stored(connection, &open)
      .await?
      .ok_or_else(|| bad("the control plane has no such asset"))?;
    crate::assets::store_by_hash(dir, hash, &bytes).map_err(|e| bad(&e.to_string()))?;
  }
  Ok(missing.len())
}

/// `wait` scaled by a random factor in [0.5, 1.0), so nodes that lost the
/// control plane together do not all come back at once.
fn jitter(wait: Duration) -> Duration {
  use std::hash::BuildHasher;
  let draw = std::hash::RandomState::new().hash_one(std::time::Instant::now()) % 1000;
  wait.mul_f64(0.5 + draw as f64 / 2000.0)
}

/// Replays a bundle's recorded imports on its modules as written out in
/// `modules_dir`.
fn recorded_resolver(
  modules_dir: &Path,
  imports: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<RecordedResolver, String> {
  // Canonical, as the bundle's own specifiers are.
  let root = std::fs::canonicalize(modules_dir).map_err(|e| e.to_string())?;
  let url = |path: &str| {
    ModuleSpecifier::from_file_path(root.join(path))
      .map_err(|()| format!("{path} is not a module path"))
  };
  let mut recorded = HashMap::new();
  for (module, targets) in imports {
    let mut resolved = HashMap::new();
    for (written, target) in targets {
      let target = match target.starts_with("node:") || target.starts_with("cloudflare:") {
        true => ModuleSpecifier::parse(target).map_err(|e| e.to_string())?,
        false => url(target)?,
      };
      resolved.insert(written.clone(), target);
    }
    recorded.insert(url(module)?, resolved);
  }
  Ok(RecordedResolver::new(recorded))
}
