//! The control plane's storage: one trait, [`Store`], with an embedded
//! SQLite implementation ([`SqliteStore`]) and a PostgreSQL one
//! ([`PostgresStore`]) for several replicas on one database.
//!
//! The store is the authority for everything the control plane knows.
//! Every change to what edges serve (a deployment, a route) bumps the
//! epoch in the same transaction, so an edge at epoch N has seen exactly
//! the changes up to N.

mod assets;
mod certs;
mod crons;
mod crons_postgres;
mod crons_sqlite;
mod dispatch;
mod kv;
mod kv_postgres;
mod kv_sqlite;
mod postgres;
mod secrets;
mod secrets_postgres;
mod secrets_sqlite;
mod sqlite;

use futures::future::BoxFuture;
use outpost_protocol::RoutePattern;
use outpost_protocol::sync::State;
use serde::{Deserialize, Serialize};

pub use assets::AssetStore;
pub use certs::{CertStore, StoredCertificate};
pub use crons::{CronStore, FiringKey, FiringRecord};
pub use dispatch::{DispatchNamespaceInfo, DispatchStore, UserWorkerInfo};
pub use kv::{KvNamespaceInfo, KvStore, KvWrite};
pub use postgres::{Change, PostgresStore, listen_for_changes};
pub use secrets::{SecretStore, SecretsBase, SecretsChanged};
pub use sqlite::SqliteStore;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
  /// Everything, tokens and edge enrolment included.
  Admin,
  /// Upload, deploy, roll back and route workers; read everything.
  Deploy,
  /// Write KV entries; read everything.
  KvWrite,
  /// Read only.
  ReadOnly,
  /// Enrol one edge node, once.
  EdgeJoin,
}

impl Scope {
  /// Every scope, for help texts and errors.
  pub const ALL: [Scope; 5] = [
    Scope::Admin,
    Scope::Deploy,
    Scope::KvWrite,
    Scope::ReadOnly,
    Scope::EdgeJoin,
  ];

  /// The scope's name, as on the command line and in the API.
  pub fn name(self) -> &'static str {
    match self {
      Scope::Admin => "admin",
      Scope::Deploy => "deploy",
      Scope::KvWrite => "kv-write",
      Scope::ReadOnly => "read-only",
      Scope::EdgeJoin => "edge-join",
    }
  }

  /// Parses a scope name.
  pub fn parse(name: &str) -> Option<Scope> {
    Scope::ALL.into_iter().find(|scope| scope.name() == name)
  }

  /// Whether a token of this scope may do what `needed` allows.
  pub fn allows(self, needed: Scope) -> bool {
    match (self, needed) {
      (Scope::Admin, _) => true,
      (Scope::EdgeJoin, Scope::EdgeJoin) => true,
      (Scope::EdgeJoin, _) | (_, Scope::EdgeJoin) => false,
      (_, Scope::ReadOnly) => true,
      (held, needed) => held == needed,
    }
  }
}

/// A stored token: only its hash is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
  /// The token's id, for listing and revoking.
  pub id: i64,
  /// What it may do.
  pub scope: Scope,
  /// A note on what it is for.
  pub label: String,
}

/// One uploaded version of a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
  /// The worker.
  pub worker: String,
  /// 1 for the first version uploaded, then 2, 3, ...
  pub number: u64,
  /// The bundle's sha256.
  pub hash: String,
  /// The bundle's size in bytes.
  pub size: u64,
  /// When it was uploaded, in seconds since the Unix epoch.
  pub created_at: i64,
}

/// What uploading a bundle did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uploaded {
  /// The version the bundle is.
  pub version: VersionInfo,
  /// False if the worker already had a version with this content.
  pub created: bool,
}

/// A version and its share in a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
  /// The version number.
  pub version: u64,
  /// Its share of requests, 1 to 100.
  pub percent: u8,
}

/// One deployment of a worker: the versions that serve it from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
  /// Increases with every deployment, across workers.
  pub id: i64,
  /// The worker.
  pub worker: String,
  /// The versions and their shares, summing to 100; none if the worker
  /// was removed.
  pub shares: Vec<Share>,
  /// The epoch this deployment made.
  pub epoch: u64,
  /// When it was made, in seconds since the Unix epoch.
  pub created_at: i64,
  /// For a rollback, the earlier deployment whose versions it brought back.
  #[serde(skip_serializing_if = "Option::is_none")]
  pub restores: Option<i64>,
}

/// An enrolled edge node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeInfo {
  /// The node's id, also the subject of its client certificate.
  pub id: String,
  /// The name it enrolled with.
  pub name: String,
  /// When it enrolled, in seconds since the Unix epoch.
  pub enrolled_at: i64,
  /// When the control plane last heard from it.
  pub last_seen: Option<i64>,
  /// The last epoch it acknowledged.
  pub epoch: u64,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
  /// No such worker, version, deployment or route.
  #[error("{0}")]
  NotFound(String),
  /// The request contradicts what is stored (a route claimed by another
  /// worker, nothing to roll back to).
  #[error("{0}")]
  Conflict(String),
  /// The request is not valid on its own terms (shares not summing to 100).
  #[error("{0}")]
  Invalid(String),
  /// The database failed.
  #[error("database: {0}")]
  Database(String),
}

impl From<rusqlite::Error> for StoreError {
  fn from(err: rusqlite::Error) -> Self {
    StoreError::Database(err.to_string())
  }
}

/// A result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// The control plane's storage. Every method is one transaction.
pub trait Store:
  KvStore + CertStore + SecretStore + CronStore + AssetStore + DispatchStore + Send + Sync + 'static
{
  /// Stores a token's hash with its scope.
  fn create_token(
    &self,
    hash: String,
    scope: Scope,
    label: String,
  ) -> BoxFuture<'_, StoreResult<TokenRecord>>;
  /// The token with this hash, if any.
  fn find_token(&self, hash: String) -> BoxFuture<'_, StoreResult<Option<TokenRecord>>>;
  /// Deletes the edge-join token with this hash; false if there was none
  /// (or it was used already).
  fn use_join_token(&self, hash: String) -> BoxFuture<'_, StoreResult<bool>>;

  /// A value kept by the control plane itself (its CA, for one).
  fn setting(&self, key: String) -> BoxFuture<'_, StoreResult<Option<String>>>;
  /// Sets a value unless one is set already; returns the value that holds.
  fn init_setting(&self, key: String, value: String) -> BoxFuture<'_, StoreResult<String>>;

  /// Stores a bundle (already validated, `bytes` its canonical encoding) as
  /// the worker's next version, or finds the version with the same hash.
  fn put_version(
    &self,
    worker: String,
    hash: String,
    bytes: Vec<u8>,
  ) -> BoxFuture<'_, StoreResult<Uploaded>>;
  /// The worker's versions, oldest first.
  fn versions(&self, worker: String) -> BoxFuture<'_, StoreResult<Vec<VersionInfo>>>;
  /// A bundle's canonical bytes by hash.
  fn bundle(&self, hash: String) -> BoxFuture<'_, StoreResult<Option<Vec<u8>>>>;

  /// Makes `shares` the worker's active deployment.
  fn deploy(&self, worker: String, shares: Vec<Share>) -> BoxFuture<'_, StoreResult<Deployment>>;
  /// Stops serving the worker: removes its routes and records a
  /// deployment of nothing (so a rollback brings the versions back, not the
  /// routes). Its versions stay stored.
  fn remove_worker(&self, worker: String) -> BoxFuture<'_, StoreResult<Deployment>>;
  /// Redeploys what served before the active deployment.
  fn rollback(&self, worker: String) -> BoxFuture<'_, StoreResult<Deployment>>;
  /// The worker's deployments, newest first.
  fn deployments(&self, worker: String) -> BoxFuture<'_, StoreResult<Vec<Deployment>>>;

  /// Routes `pattern` to `worker`; a pattern another worker holds is a
  /// conflict. Returns the new epoch.
  fn put_route(&self, pattern: RoutePattern, worker: String) -> BoxFuture<'_, StoreResult<u64>>;
  /// Removes a route. Returns the new epoch.
  fn delete_route(&self, pattern: RoutePattern) -> BoxFuture<'_, StoreResult<u64>>;

  /// Everything edges serve, as of the current epoch.
  fn state(&self) -> BoxFuture<'_, StoreResult<State>>;

  /// Records an enrolled edge node.
  fn add_edge(&self, id: String, name: String) -> BoxFuture<'_, StoreResult<EdgeInfo>>;
  /// Records that an edge was heard from, at `epoch`.
  fn edge_seen(&self, id: String, epoch: u64) -> BoxFuture<'_, StoreResult<()>>;
  /// Every enrolled edge node.
  fn edges(&self) -> BoxFuture<'_, StoreResult<Vec<EdgeInfo>>>;
  /// Forgets an edge node, so its certificate no longer gets it in; false
  /// if there was none with that id.
  fn remove_edge(&self, id: String) -> BoxFuture<'_, StoreResult<bool>>;
}

/// Checks a deployment's shares: one or two versions, each 1 to 100 %,
/// summing to 100, no version twice.
pub fn check_shares(shares: &[Share]) -> StoreResult<()> {
  if shares.is_empty() || shares.len() > 2 {
    return Err(StoreError::Invalid(
      "a deployment serves one version, or two with a split".into(),
    ));
  }
  if shares
    .iter()
    .any(|share| share.percent == 0 || share.percent > 100)
  {
    return Err(StoreError::Invalid(
      "each share must be 1 to 100 percent".into(),
    ));
  }
  if shares
    .iter()
    .map(|share| u32::from(share.percent))
    .sum::<u32>()
    != 100
  {
    return Err(StoreError::Invalid(
      "the shares must sum to 100 percent".into(),
    ));
  }
  if shares.len() == 2 && shares[0].version == shares[1].version {
    return Err(StoreError::Invalid(
      "a split needs two different versions".into(),
    ));
  }
  Ok(())
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
  std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
