//! Cron firings in the store: one row per (worker, trigger, scheduled
//! time), whose primary key makes each firing claimable once across every
//! replica. A claim holds a lease; a replica that dies leaves its claims to
//! expire, and another takes them over.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::StoreResult;

/// Milliseconds as the databases store them; times past 2^63 ms do not
/// occur.
pub(super) fn ms(value: u64) -> i64 {
  i64::try_from(value).unwrap_or(i64::MAX)
}

/// A stored time back to milliseconds.
pub(super) fn unsigned(value: i64) -> u64 {
  u64::try_from(value).unwrap_or(0)
}

/// The table of firings, the same in both databases' dialects.
pub(super) const CRON_FIRINGS_TABLE: &str = r#"
  CREATE TABLE cron_firings (
    worker TEXT NOT NULL,
    cron TEXT NOT NULL,
    scheduled_ms BIGINT NOT NULL,
    replica TEXT NOT NULL,
    lease_until_ms BIGINT NOT NULL,
    edge TEXT,
    ok BOOLEAN,
    duration_ms BIGINT,
    PRIMARY KEY (worker, cron, scheduled_ms)
  );
  CREATE INDEX cron_firings_unfinished ON cron_firings (scheduled_ms) WHERE edge IS NULL;
"#;

/// A firing, as the store keys it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FiringKey {
  /// The worker.
  pub worker: String,
  /// The trigger's pattern.
  pub cron: String,
  /// Its scheduled time, in milliseconds since the Unix epoch.
  pub scheduled_ms: u64,
}

/// How a firing ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiringRecord {
  /// Which firing.
  pub key: FiringKey,
  /// The edge node that ran it; `None` while it is claimed but not done.
  pub edge: Option<String>,
  /// Whether its handler completed.
  pub ok: Option<bool>,
  /// How long it ran, in milliseconds.
  pub duration_ms: Option<u64>,
}

/// Where cron firings are claimed and recorded.
pub trait CronStore {
  /// Claims `key` for `replica` until `lease_until_ms`: true if it was
  /// never claimed, or its claim lapsed unfinished before `now_ms`.
  fn claim_firing(
    &self,
    key: FiringKey,
    replica: String,
    now_ms: u64,
    lease_until_ms: u64,
  ) -> BoxFuture<'_, StoreResult<bool>>;
  /// Extends `replica`'s claim on `key`; false if it holds it no more.
  fn renew_firing(
    &self,
    key: FiringKey,
    replica: String,
    lease_until_ms: u64,
  ) -> BoxFuture<'_, StoreResult<bool>>;
  /// Gives up `replica`'s claim on `key` (no node could run it), so any
  /// replica may claim it again at once.
  fn release_firing(&self, key: FiringKey, replica: String) -> BoxFuture<'_, StoreResult<()>>;
  /// Records that `edge` ran `key`; false if it was recorded already.
  fn finish_firing(
    &self,
    key: FiringKey,
    edge: String,
    ok: bool,
    duration_ms: u64,
  ) -> BoxFuture<'_, StoreResult<bool>>;
  /// The latest scheduled time of `worker`'s `cron` claimed so far.
  fn last_firing(&self, worker: String, cron: String) -> BoxFuture<'_, StoreResult<Option<u64>>>;
  /// Firings claimed but unfinished whose lease lapsed before `now_ms`,
  /// scheduled after `since_ms`.
  fn lapsed_firings(
    &self,
    since_ms: u64,
    now_ms: u64,
  ) -> BoxFuture<'_, StoreResult<Vec<FiringKey>>>;
  /// `worker`'s firings, newest first, at most `limit`.
  fn firings(&self, worker: String, limit: u32) -> BoxFuture<'_, StoreResult<Vec<FiringRecord>>>;
  /// Forgets firings scheduled before `before_ms`.
  fn prune_firings(&self, before_ms: u64) -> BoxFuture<'_, StoreResult<u64>>;
}
