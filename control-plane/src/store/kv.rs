//! KV storage, part of every [`Store`](super::Store): namespaces and their
//! entries, with expiry and cursor-paginated lists. The SQLite and
//! PostgreSQL versions are in `kv_sqlite.rs` and `kv_postgres.rs`.
//!
//! Expired entries are invisible to reads and lists; `now` comes from the
//! caller's [`Clock`](outpost_protocol::kv::Clock), so tests can move it.

use futures::future::BoxFuture;
use outpost_protocol::kv::{KvEntry, KvListOptions, KvListPage};
use serde::{Deserialize, Serialize};

use super::StoreResult;

/// A KV namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvNamespaceInfo {
  /// Its id, which bindings name.
  pub id: String,
  /// Its title, unique.
  pub title: String,
  /// When it was created, in seconds since the Unix epoch.
  pub created_at: i64,
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvWrite {
  /// Sets a key.
  Put {
    /// The key.
    key: String,
    /// Its value, metadata and expiration.
    entry: KvEntry,
  },
  /// Removes a key, if it exists.
  Delete {
    /// The key.
    key: String,
  },
}

impl KvWrite {
  /// The key written.
  pub fn key(&self) -> &str {
    match self {
      KvWrite::Put { key, .. } | KvWrite::Delete { key } => key,
    }
  }
}

/// KV namespaces and entries. Every method is one transaction; a method
/// naming a namespace that does not exist fails with `NotFound`.
pub trait KvStore: Send + Sync + 'static {
  /// Creates a namespace; a title already taken is a conflict.
  fn create_kv_namespace(
    &self,
    id: String,
    title: String,
  ) -> BoxFuture<'_, StoreResult<KvNamespaceInfo>>;
  /// Every namespace, by title.
  fn kv_namespaces(&self) -> BoxFuture<'_, StoreResult<Vec<KvNamespaceInfo>>>;
  /// Deletes a namespace and all its entries; false if there was none.
  fn delete_kv_namespace(&self, id: String) -> BoxFuture<'_, StoreResult<bool>>;
  /// The live entry under `key` at `now`, if any.
  fn kv_get(
    &self,
    namespace: String,
    key: String,
    now: u64,
  ) -> BoxFuture<'_, StoreResult<Option<KvEntry>>>;
  /// Applies `writes` in order, all or none.
  fn kv_write(&self, namespace: String, writes: Vec<KvWrite>) -> BoxFuture<'_, StoreResult<()>>;
  /// The live keys at `now`, in byte order, after the cursor (the last key
  /// of the previous page).
  fn kv_list(
    &self,
    namespace: String,
    options: KvListOptions,
    now: u64,
  ) -> BoxFuture<'_, StoreResult<KvListPage>>;
}

/// Builds a page from up to `limit + 1` rows read in key order: the extra
/// row only tells that more follow.
pub(crate) fn page(mut keys: Vec<outpost_protocol::kv::KvListKey>, limit: usize) -> KvListPage {
  let more = keys.len() > limit;
  keys.truncate(limit);
  let cursor = more.then(|| keys.last().map(|k| k.name.clone())).flatten();
  KvListPage {
    keys,
    list_complete: !more,
    cursor,
  }
}

/// Seconds as both databases store them (a signed 64-bit integer).
pub(crate) fn sql_time(seconds: u64) -> i64 {
  i64::try_from(seconds).unwrap_or(i64::MAX)
}

/// Seconds read back from either database.
pub(crate) fn from_sql_time(seconds: Option<i64>) -> Option<u64> {
  seconds.map(|s| u64::try_from(s).unwrap_or(0))
}
