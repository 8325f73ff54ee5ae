//! [`ControlPlane`]: the state every part of the control plane shares.

use std::sync::Arc;

use std::collections::BTreeMap;

use outpost_protocol::sync::{PushedCertificate, State};
use outpost_protocol::tail::TailEvent;
use tokio::sync::{broadcast, watch};

use outpost_protocol::kv::Clock;

use crate::certs::Authority;
use crate::firings::FiringDesk;
use crate::kv::KvChange;
use crate::scheduler::CronClock;
use crate::secrets::{SecretsError, SecretsKey};
use crate::store::StoreError;
use crate::store::{Scope, Store};
use crate::tokens;

/// The store, the certificate authority and the change feed.
pub struct ControlPlane {
  store: Arc<dyn Store>,
  authority: Authority,
  /// Where edges reach the sync endpoint, told to them at enrolment.
  sync_address: String,
  /// The newest epoch this process knows of; sync connections watch it.
  epoch: watch::Sender<u64>,
  /// Ids of edge nodes removed through this process; their connections
  /// close.
  removed: broadcast::Sender<String>,
  /// KV keys written through this process; edges drop them from caches.
  kv_changes: broadcast::Sender<KvChange>,
  /// What KV expiry is measured by.
  clock: Clock,
  /// Edges holding a sync connection to this process now.
  connected: std::sync::atomic::AtomicUsize,
  /// How many `outpost tail`s follow each worker through this process.
  tails: std::sync::Mutex<BTreeMap<String, usize>>,
  /// The workers tailed now, for the sync connections to tell edges.
  tailed: watch::Sender<Vec<String>>,
  /// Tail events from every edge connected here.
  tail_events: broadcast::Sender<Arc<TailEvent>>,
  /// What certificates' private keys are sealed with, once set.
  secrets: std::sync::OnceLock<SecretsKey>,
  /// Cron firings handed to the edges connected here.
  firings: FiringDesk,
  /// What cron firings are timed by, once set (else the system clock).
  cron_clock: std::sync::OnceLock<CronClock>,
  /// When, by the cron clock, this process learned of its newest epoch.
  epoch_learned_ms: std::sync::atomic::AtomicU64,
}

static SYSTEM_CLOCK: CronClock = CronClock::System;

impl ControlPlane {
  /// A control plane on `store` with `authority` (see
  /// [`Authority::load_or_create`]), whose sync endpoint edges reach at
  /// `sync_address`; its change feed starts at the store's current epoch.
  pub async fn new(
    store: Arc<dyn Store>,
    authority: Authority,
    sync_address: String,
  ) -> Result<Arc<Self>, crate::Error> {
    let epoch = store.state().await?.epoch;
    Ok(Arc::new(Self {
      store,
      authority,
      sync_address,
      epoch: watch::Sender::new(epoch),
      removed: broadcast::Sender::new(16),
      kv_changes: broadcast::Sender::new(4096),
      clock: Clock::system(),
      connected: Default::default(),
      tails: Default::default(),
      tailed: watch::Sender::new(Vec::new()),
      tail_events: broadcast::Sender::new(4096),
      secrets: std::sync::OnceLock::new(),
      firings: FiringDesk::default(),
      cron_clock: std::sync::OnceLock::new(),
      epoch_learned_ms: SYSTEM_CLOCK.now_ms().into(),
    }))
  }

  /// Starts following `worker`'s events; edges send them while any
  /// subscription lives.
  pub fn start_tail(self: &Arc<Self>, worker: &str) -> TailSubscription {
    let events = self.tail_events.subscribe();
    self.count_tail(worker, true);
    TailSubscription {
      app: self.clone(),
      worker: worker.to_owned(),
      events,
    }
  }

  fn count_tail(&self, worker: &str, more: bool) {
    let Ok(mut tails) = self.tails.lock() else {
      return;
    };
    let count = tails.entry(worker.to_owned()).or_default();
    if more {
      *count += 1;
    } else {
      *count = count.saturating_sub(1);
    }
    tails.retain(|_, count| *count > 0);
    let workers: Vec<String> = tails.keys().cloned().collect();
    self.tailed.send_if_modified(|current| {
      let changed = *current != workers;
      *current = workers;
      changed
    });
  }

  /// The workers tailed now, for the sync server.
  pub fn watch_tailed(&self) -> watch::Receiver<Vec<String>> {
    self.tailed.subscribe()
  }

  /// Passes an edge's event to every tail.
  pub fn tail_event(&self, event: TailEvent) {
    let _ = self.tail_events.send(Arc::new(event));
  }

  /// Seals and opens certificates' private keys with `key` from now on.
  pub fn set_secrets_key(&self, key: SecretsKey) {
    let _ = self.secrets.set(key);
  }

  /// The secrets key, if one was set.
  pub fn secrets(&self) -> Result<&SecretsKey, SecretsError> {
    self.secrets.get().ok_or(SecretsError::NoKey)
  }

  /// What edges serve: the store's state, with the certificates' keys
  /// opened. A certificate whose key does not open is left out, and
  /// logged.
  pub async fn edge_state(&self) -> Result<State, StoreError> {
    let mut state = self.store.state().await?;
    self.open_secrets(&mut state).await?;
    for stored in self.store.certificates().await? {
      let opened = self
        .secrets()
        .and_then(|key| key.open(&stored.key_sealed))
        .and_then(|key| String::from_utf8(key).map_err(|_| SecretsError::Corrupt));
      match opened {
        Ok(key_pem) => state.certificates.push(PushedCertificate {
          host: stored.host,
          cert_pem: stored.cert_pem,
          key_pem,
        }),
        Err(err) => tracing::error!(host = %stored.host, "certificate not sent to edges: {err}"),
      }
    }
    Ok(state)
  }

  /// Puts each deployed version's secrets, opened, into `state`. A
  /// version whose secrets do not open is served without them, and logged.
  async fn open_secrets(&self, state: &mut State) -> Result<(), StoreError> {
    let deployed: Vec<(String, u64)> = state
      .workers
      .iter()
      .flat_map(|w| w.versions.iter().map(|v| (w.worker.clone(), v.number)))
      .collect();
    let sealed = self.store.sealed_secrets(deployed).await?;
    let versions = state
      .workers
      .iter_mut()
      .flat_map(|w| w.versions.iter_mut().map(|v| (w.worker.as_str(), v)));
    for ((worker, version), sealed) in versions.zip(sealed) {
      let Some(sealed) = sealed else { continue };
      let opened = self
        .secrets()
        .and_then(|key| key.open(&sealed))
        .and_then(|json| serde_json::from_slice(&json).map_err(|_| SecretsError::Corrupt));
      match opened {
        Ok(secrets) => version.secrets = secrets,
        Err(err) => tracing::error!(
          worker,
          version = version.number,
          "secrets not sent to edges: {err}"
        ),
      }
    }
    Ok(())
  }

  /// The newest epoch this process knows of.
  pub fn epoch(&self) -> u64 {
    *self.epoch.borrow()
  }

  /// Counts a sync connection for as long as the guard lives.
  pub fn edge_connected(self: &Arc<Self>) -> ConnectedEdge {
    self
      .connected
      .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ConnectedEdge(self.clone())
  }

  /// Edges holding a sync connection to this process now.
  pub fn connected_edges(&self) -> usize {
    self.connected.load(std::sync::atomic::Ordering::Relaxed)
  }

  /// What KV expiry is measured by; tests move it to expire keys.
  pub fn clock(&self) -> &Clock {
    &self.clock
  }

  /// Times cron firings by `clock` from now on (before the scheduler
  /// starts).
  pub fn set_cron_clock(&self, clock: CronClock) {
    self
      .epoch_learned_ms
      .store(clock.now_ms(), std::sync::atomic::Ordering::Relaxed);
    let _ = self.cron_clock.set(clock);
  }

  /// What cron firings are timed by.
  pub fn cron_clock(&self) -> &CronClock {
    self.cron_clock.get().unwrap_or(&SYSTEM_CLOCK)
  }

  /// When, by the cron clock, this process learned of its newest epoch:
  /// a trigger that appeared then fires from then on.
  pub fn epoch_learned_ms(&self) -> u64 {
    self
      .epoch_learned_ms
      .load(std::sync::atomic::Ordering::Relaxed)
  }

  /// Where cron firings meet the edges that run them.
  pub fn firings(&self) -> &FiringDesk {
    &self.firings
  }

  /// The store, shared.
  pub fn shared_store(&self) -> Arc<dyn Store> {
    self.store.clone()
  }

  /// Tells the sync server that KV keys changed.
  pub fn kv_changed(&self, change: KvChange) {
    let _ = self.kv_changes.send(change);
  }

  /// Follows KV changes, for the sync server.
  pub fn watch_kv_changes(&self) -> broadcast::Receiver<KvChange> {
    self.kv_changes.subscribe()
  }

  /// The store.
  pub fn store(&self) -> &dyn Store {
    &*self.store
  }

  /// The certificate authority.
  pub fn authority(&self) -> &Authority {
    &self.authority
  }

  /// Where edges reach the sync endpoint.
  pub fn sync_address(&self) -> &str {
    &self.sync_address
  }

  /// Tells the change feed that the store has reached `epoch`.
  pub fn changed(&self, epoch: u64) {
    self.epoch.send_if_modified(|current| {
      let newer = epoch > *current;
      if newer {
        *current = epoch;
        self.epoch_learned_ms.store(
          self.cron_clock().now_ms(),
          std::sync::atomic::Ordering::Relaxed,
        );
      }
      newer
    });
  }

  /// Tells the sync server that edge `id` was removed.
  pub fn edge_removed(&self, id: &str) {
    let _ = self.removed.send(id.to_owned());
  }

  /// Follows removed edges, for the sync server.
  pub fn watch_removed_edges(&self) -> broadcast::Receiver<String> {
    self.removed.subscribe()
  }

  /// Follows the epoch, for the sync server.
  pub fn watch_epoch(&self) -> watch::Receiver<u64> {
    self.epoch.subscribe()
  }
}

/// On a store with no admin token yet, creates one and returns it, to be
/// shown once; `None` on every later start. Two processes starting on one
/// database at once create one token between them.
pub async fn bootstrap_admin_token(store: &dyn Store) -> Result<Option<String>, crate::Error> {
  let claim = tokens::random_text(16)?;
  let holder = store
    .init_setting("bootstrap".into(), claim.clone())
    .await?;
  if holder != claim {
    return Ok(None);
  }
  let token = tokens::generate()?;
  store
    .create_token(
      tokens::hash(&token),
      Scope::Admin,
      "created on first start".into(),
    )
    .await?;
  Ok(Some(token))
}

/// A live sync connection, counted in [`ControlPlane::connected_edges`]
/// until dropped.
pub struct ConnectedEdge(Arc<ControlPlane>);

impl Drop for ConnectedEdge {
  fn drop(&mut self) {
    self
      .0
      .connected
      .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
  }
}

/// One `outpost tail`: the events of every edge, for as long as it lives.
pub struct TailSubscription {
  app: Arc<ControlPlane>,
  /// The worker followed.
  pub worker: String,
  /// Every edge's events (of every tailed worker: filter by `worker`).
  pub events: broadcast::Receiver<Arc<TailEvent>>,
}

impl Drop for TailSubscription {
  fn drop(&mut self) {
    self.app.count_tail(&self.worker, false);
  }
}
