//! KV: the Workers KV data model shared by the runtime (the JS binding),
//! the edge node (its cache) and the control plane (the authority).
//!
//! - The limits and checks every writer applies before anything is stored
//!   ([`check_key`], [`check_value_len`], [`check_metadata`],
//!   [`resolve_expiration`]).
//! - The entry and list shapes ([`KvEntry`], [`KvListPage`]).
//! - [`KvBackend`], what a worker's KV binding talks to: the edge's cache in
//!   front of the control plane, or the local store of `outpost dev`.
//! - [`Clock`], the seconds that expiry is measured in, which tests can move.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// The largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 25 * 1024 * 1024;
/// The largest metadata, as serialised JSON, in bytes.
pub const MAX_METADATA_BYTES: usize = 1024;
/// The shortest `expirationTtl`, in seconds.
pub const MIN_EXPIRATION_TTL: u64 = 60;
/// The most keys one list call returns.
pub const MAX_LIST_LIMIT: usize = 1000;
/// The most pairs one bulk write holds.
pub const MAX_BULK_PAIRS: usize = 10_000;

/// Why a KV operation was refused or failed. It crosses the sync
/// connection as it is.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum KvError {
  /// A key that is empty, too long, or `.` / `..`.
  #[error("invalid KV key: {0}")]
  InvalidKey(String),
  /// A value over [`MAX_VALUE_BYTES`].
  #[error("KV value of {0} bytes is over the {MAX_VALUE_BYTES}-byte limit")]
  ValueTooLarge(usize),
  /// Metadata that is not JSON.
  #[error("invalid KV metadata: {0}")]
  InvalidMetadata(String),
  /// Metadata over [`MAX_METADATA_BYTES`] serialised.
  #[error("KV metadata of {0} bytes serialised is over the {MAX_METADATA_BYTES}-byte limit")]
  MetadataTooLarge(usize),
  /// An expiration in the past, or an `expirationTtl` under the minimum.
  #[error("invalid KV expiration: {0}")]
  InvalidExpiration(String),
  /// A list limit outside 1 to [`MAX_LIST_LIMIT`], or a bad cursor.
  #[error("invalid KV list option: {0}")]
  InvalidList(String),
  /// No namespace has this id.
  #[error("KV namespace {0:?} does not exist")]
  NoNamespace(String),
  /// The authority could not be reached and nothing was cached.
  #[error("KV is unavailable: {0}")]
  Unavailable(String),
  /// The store failed.
  #[error("KV storage failed: {0}")]
  Storage(String),
}

/// A stored value with what came with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
  /// The value's bytes.
  #[serde(skip)]
  pub value: Vec<u8>,
  /// The metadata, as JSON text.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub metadata: Option<String>,
  /// When it expires, in seconds since the Unix epoch.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub expiration: Option<u64>,
}

impl KvEntry {
  /// Whether it has expired at `now` (seconds since the Unix epoch).
  pub fn expired(&self, now: u64) -> bool {
    self.expiration.is_some_and(|at| at <= now)
  }
}

/// One key in a list page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvListKey {
  /// The key.
  pub name: String,
  /// When it expires, in seconds since the Unix epoch.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub expiration: Option<u64>,
  /// Its metadata, as JSON text.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub metadata: Option<String>,
}

/// One page of a list, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvListPage {
  /// The keys.
  pub keys: Vec<KvListKey>,
  /// Whether no keys follow.
  pub list_complete: bool,
  /// What to pass to get the next page, when there is one.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub cursor: Option<String>,
}

/// What to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvListOptions {
  /// Only keys starting with this.
  #[serde(default)]
  pub prefix: String,
  /// At most this many keys, 1 to [`MAX_LIST_LIMIT`].
  pub limit: usize,
  /// From a previous page's cursor.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub cursor: Option<String>,
}

impl KvListOptions {
  /// Checks the limit.
  pub fn check(&self) -> Result<(), KvError> {
    if self.limit == 0 || self.limit > MAX_LIST_LIMIT {
      return Err(KvError::InvalidList(format!(
        "limit must be 1 to {MAX_LIST_LIMIT}, not {}",
        self.limit
      )));
    }
    Ok(())
  }
}

/// Where a read was answered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CacheStatus {
  /// From the node's cache.
  Hit,
  /// From the authority, and cached now.
  Miss,
}

/// A read: the entry if there is one live, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvRead {
  /// The entry, or `None` if the key does not exist (or has expired).
  pub entry: Option<KvEntry>,
  /// Where it was answered from; `None` where nothing caches.
  pub cache_status: Option<CacheStatus>,
}

/// A boxed future a [`KvBackend`] returns.
pub type KvFuture<T> = Pin<Box<dyn Future<Output = Result<T, KvError>> + Send>>;

/// What a worker's KV bindings talk to. Every call names the namespace; the
/// binding has checked that the worker may use it, and the arguments
/// (key, value, metadata, expiration, list options) already.
pub trait KvBackend: Send + Sync + Debug + 'static {
  /// The clock expiry is measured by.
  fn clock(&self) -> &Clock;
  /// Reads a key; `cache_ttl` is how long a cache may keep the answer, in
  /// seconds.
  fn get(&self, namespace: &str, key: &str, cache_ttl: Option<u64>) -> KvFuture<KvRead>;
  /// Writes a key.
  fn put(&self, namespace: &str, key: &str, entry: KvEntry) -> KvFuture<()>;
  /// Deletes a key (deleting a missing key is not an error).
  fn delete(&self, namespace: &str, key: &str) -> KvFuture<()>;
  /// Lists keys.
  fn list(&self, namespace: &str, options: KvListOptions) -> KvFuture<KvListPage>;
}

/// Seconds since the Unix epoch, from the system clock plus an offset that
/// tests move to expire keys without waiting. Cheap to clone; clones share
/// the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
  offset: Arc<AtomicI64>,
}

impl Clock {
  /// The system clock.
  pub fn system() -> Self {
    Self::default()
  }

  /// Now, in seconds since the Unix epoch.
  pub fn now(&self) -> u64 {
    let system = std::time::SystemTime::now()
      .duration_since(std::time::UNIX_EPOCH)
      .map_or(0, |d| d.as_secs());
    system.saturating_add_signed(self.offset.load(Ordering::Relaxed))
  }

  /// Moves this clock (and its clones) `seconds` forward.
  pub fn advance(&self, seconds: i64) {
    self.offset.fetch_add(seconds, Ordering::Relaxed);
  }
}

/// Checks a key: 1 to [`MAX_KEY_BYTES`] bytes, and neither `.` nor `..`.
pub fn check_key(key: &str) -> Result<(), KvError> {
  if key.is_empty() {
    return Err(KvError::InvalidKey("keys must not be empty".into()));
  }
  if key.len() > MAX_KEY_BYTES {
    return Err(KvError::InvalidKey(format!(
      "keys are at most {MAX_KEY_BYTES} bytes, this one is {}",
      key.len()
    )));
  }
  if key == "." || key == ".." {
    return Err(KvError::InvalidKey(format!(
      "{key:?} is not allowed as a key"
    )));
  }
  Ok(())
}

/// Checks a value's size.
pub fn check_value_len(len: usize) -> Result<(), KvError> {
  if len > MAX_VALUE_BYTES {
    return Err(KvError::ValueTooLarge(len));
  }
  Ok(())
}

/// Checks metadata given as JSON text: valid JSON, at most
/// [`MAX_METADATA_BYTES`].
pub fn check_metadata(metadata: &str) -> Result<(), KvError> {
  if metadata.len() > MAX_METADATA_BYTES {
    return Err(KvError::MetadataTooLarge(metadata.len()));
  }
  serde_json::from_str::<serde_json::Value>(metadata)
    .map(|_| ())
    .map_err(|e| KvError::InvalidMetadata(format!("not JSON: {e}")))
}

/// The absolute expiration of a put from its `expiration` (seconds since
/// the epoch) or `expirationTtl` (seconds from `now`); `expiration` wins
/// when both are given, as in Workers KV.
pub fn resolve_expiration(
  expiration: Option<u64>,
  expiration_ttl: Option<u64>,
  now: u64,
) -> Result<Option<u64>, KvError> {
  if let Some(at) = expiration {
    if at <= now {
      return Err(KvError::InvalidExpiration(format!(
        "expiration {at} is not in the future (now is {now})"
      )));
    }
    return Ok(Some(at));
  }
  match expiration_ttl {
    Some(ttl) if ttl < MIN_EXPIRATION_TTL => Err(KvError::InvalidExpiration(format!(
      "expirationTtl must be at least {MIN_EXPIRATION_TTL} seconds, not {ttl}"
    ))),
    Some(ttl) => Ok(Some(now.saturating_add(ttl))),
    None => Ok(None),
  }
}

/// Checks a put and makes its entry: the key, the value's size, the
/// metadata (JSON text), and the expiration from `expiration` or
/// `expiration_ttl` at `now`.
pub fn prepare_put(
  key: &str,
  value: Vec<u8>,
  metadata: Option<String>,
  expiration: Option<u64>,
  expiration_ttl: Option<u64>,
  now: u64,
) -> Result<KvEntry, KvError> {
  check_key(key)?;
  check_value_len(value.len())?;
  if let Some(metadata) = &metadata {
    check_metadata(metadata)?;
  }
  Ok(KvEntry {
    value,
    metadata,
    expiration: resolve_expiration(expiration, expiration_ttl, now)?,
  })
}

/// Checks a namespace id: 1 to 64 letters, digits, `-` or `_`.
pub fn check_namespace_id(id: &str) -> Result<(), KvError> {
  let ok = !id.is_empty()
    && id.len() <= 64
    && id
      .bytes()
      .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
  if ok {
    Ok(())
  } else {
    Err(KvError::NoNamespace(id.to_owned()))
  }
}
