//! KV at the edge: [`EdgeKv`], a moka cache in front of the control plane.
//!
//! Reads are answered from the cache while an entry (or the knowledge that
//! a key does not exist) is fresh: for the read's `cacheTtl`, 60 s by
//! default and at least 30 s, and never past the entry's own expiration.
//! Misses, writes and lists go to the control plane on a stream of the
//! sync connection, with a timeout. A write updates the cache once the
//! control plane has stored it, so the writing node reads its own writes;
//! the control plane tells every other node to drop the key.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;
use outpost_protocol::kv::{
  CacheStatus, Clock, KvBackend, KvEntry, KvError, KvFuture, KvListOptions, KvListPage, KvRead,
};
use outpost_protocol::sync::{
  KvReply, KvRequest, StreamOpen, read_frame, read_raw, write_frame, write_raw,
};
use tokio::sync::watch;

/// How long a read is cached when it names no `cacheTtl`.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// The shortest `cacheTtl`.
pub const MIN_CACHE_TTL: Duration = Duration::from_secs(30);

/// A namespace and key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
  namespace: Arc<str>,
  key: Arc<str>,
}

/// A cached answer: the entry, or `None` for a key known not to exist.
#[derive(Debug, Clone)]
struct Cached {
  entry: Option<Arc<KvEntry>>,
  ttl: Duration,
}

impl Cached {
  fn weight(key: &CacheKey, cached: &Cached) -> u32 {
    let entry = cached.entry.as_ref().map_or(0, |entry| {
      entry.value.len() + entry.metadata.as_ref().map_or(0, String::len)
    });
    u32::try_from(key.namespace.len() + key.key.len() + entry + 96).unwrap_or(u32::MAX)
  }
}

struct CachedTtl;

impl Expiry<CacheKey, Cached> for CachedTtl {
  fn expire_after_create(&self, _: &CacheKey, cached: &Cached, _: Instant) -> Option<Duration> {
    Some(cached.ttl)
  }

  fn expire_after_update(
    &self,
    _: &CacheKey,
    cached: &Cached,
    _: Instant,
    _: Option<Duration>,
  ) -> Option<Duration> {
    Some(cached.ttl)
  }
}

/// Counters of the cache, for metrics.
#[derive(Debug, Default)]
pub struct KvCounters {
  /// Reads answered from the cache.
  pub hits: AtomicU64,
  /// Reads not answered from the cache.
  pub misses: AtomicU64,
  /// Reads sent to the control plane: concurrent misses of one key share
  /// one.
  pub fetches: AtomicU64,
}

/// A read of one key from the control plane, shared by every miss of that
/// key while it runs.
type Fetch = futures::future::Shared<
  std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<KvEntry>, KvError>> + Send>>,
>;

/// The node's KV: one cache for every worker, in front of the control
/// plane. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct EdgeKv {
  inner: Arc<Inner>,
}

struct Inner {
  cache: Cache<CacheKey, Cached>,
  link: watch::Sender<Option<quinn::Connection>>,
  clock: Clock,
  timeout: Duration,
  counters: KvCounters,
  /// Reads of keys from the control plane under way.
  inflight: std::sync::Mutex<std::collections::HashMap<CacheKey, Fetch>>,
}

impl std::fmt::Debug for EdgeKv {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("EdgeKv")
      .field("entries", &self.inner.cache.entry_count())
      .field("timeout", &self.inner.timeout)
      .finish_non_exhaustive()
  }
}

impl EdgeKv {
  /// A cache of at most `budget_bytes`, whose calls to the control plane
  /// give up after `timeout`.
  pub fn new(budget_bytes: u64, timeout: Duration) -> Self {
    let inner = Inner {
      cache: Cache::builder()
        .max_capacity(budget_bytes)
        .weigher(Cached::weight)
        .expire_after(CachedTtl)
        .support_invalidation_closures()
        .build(),
      link: watch::Sender::new(None),
      clock: Clock::system(),
      timeout,
      counters: KvCounters::default(),
      inflight: std::sync::Mutex::default(),
    };
    Self {
      inner: Arc::new(inner),
    }
  }

  /// Hit and miss counts.
  pub fn counters(&self) -> &KvCounters {
    &self.inner.counters
  }

  fn shared(&self) -> Arc<Inner> {
    self.inner.clone()
  }

  /// Sends a write; once the control plane has stored it, caches what the
  /// key now holds (`None`: deleted), so this node reads its own write.
  fn write_through(
    &self,
    namespace: &str,
    key: &str,
    request: KvRequest,
    value: Option<Vec<u8>>,
    now_holds: Option<KvEntry>,
  ) -> KvFuture<()> {
    let this = self.shared();
    let cache_key = CacheKey {
      namespace: namespace.into(),
      key: key.into(),
    };
    Box::pin(async move {
      match this.call(request, value).await? {
        (KvReply::Done, _) => {
          this.remember(cache_key, now_holds, DEFAULT_CACHE_TTL);
          Ok(())
        }
        (reply, _) => Err(unexpected(&reply)),
      }
    })
  }

  /// Sets the connection to the control plane (`None` when it is lost).
  /// A new connection drops the cache: invalidations sent while the node
  /// was away were missed.
  pub fn set_link(&self, connection: Option<quinn::Connection>) {
    if connection.is_some() {
      self.inner.cache.invalidate_all();
    }
    self.inner.link.send_replace(connection);
  }

  /// Drops cached keys of `namespace` (all of them for `None`).
  pub fn invalidate(&self, namespace: &str, keys: Option<Vec<String>>) {
    match keys {
      Some(keys) => {
        for key in keys {
          self.inner.cache.invalidate(&CacheKey {
            namespace: namespace.into(),
            key: key.into(),
          });
        }
      }
      None => {
        let namespace: Arc<str> = namespace.into();
        // Fails only without support_invalidation_closures, set in new().
        if self
          .inner
          .cache
          .invalidate_entries_if(move |key, _| key.namespace == namespace)
          .is_err()
        {
          self.inner.cache.invalidate_all();
        }
      }
    }
  }

  /// Drops the whole cache.
  pub fn flush(&self) {
    self.inner.cache.invalidate_all();
  }
}

impl Inner {
  fn remember(&self, key: CacheKey, entry: Option<KvEntry>, ttl: Duration) {
    let now = self.clock.now();
    let ttl = match entry.as_ref().and_then(|e| e.expiration) {
      Some(at) => ttl.min(Duration::from_secs(at.saturating_sub(now))),
      None => ttl,
    };
    if !ttl.is_zero() {
      let entry = entry.map(Arc::new);
      self.cache.insert(key, Cached { entry, ttl });
    }
  }

  /// The read of `key` from the control plane that is running now, or a
  /// new one; it caches what it finds for `ttl`.
  fn fetch(self: &Arc<Self>, key: &CacheKey, ttl: Duration) -> Fetch {
    let Ok(mut inflight) = self.inflight.lock() else {
      return self.new_fetch(key.clone(), ttl);
    };
    inflight
      .entry(key.clone())
      .or_insert_with(|| self.new_fetch(key.clone(), ttl))
      .clone()
  }

  fn new_fetch(self: &Arc<Self>, key: CacheKey, ttl: Duration) -> Fetch {
    use futures::FutureExt;
    let this = self.clone();
    let read = async move {
      this.counters.fetches.fetch_add(1, Ordering::Relaxed);
      let request = KvRequest::Get {
        namespace: key.namespace.to_string(),
        key: key.key.to_string(),
      };
      let entry = match this.call(request, None).await? {
        (
          KvReply::Found {
            metadata,
            expiration,
          },
          Some(value),
        ) => Some(KvEntry {
          value,
          metadata,
          expiration,
        }),
        (KvReply::NotFound, _) => None,
        (reply, _) => return Err(unexpected(&reply)),
      };
      this.remember(key, entry.clone(), ttl);
      Ok(entry)
    };
    let read: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>> = Box::pin(read);
    read.shared()
  }

  /// One call to the control plane: the request (and a put's value), then
  /// the reply (and a found value), within the timeout.
  async fn call(
    &self,
    request: KvRequest,
    value: Option<Vec<u8>>,
  ) -> Result<(KvReply, Option<Vec<u8>>), KvError> {
    let unavailable = |why: String| KvError::Unavailable(why);
    let connection = self.link.borrow().clone().ok_or_else(|| {
      unavailable("the control plane is unreachable and the key is not cached".into())
    })?;
    let exchange = async {
      let lost = |e: &dyn std::fmt::Display| {
        unavailable(format!("the control plane connection failed: {e}"))
      };
      let (mut send, mut recv) = connection.open_bi().await.map_err(|e| lost(&e))?;
      write_frame(&mut send, &StreamOpen::Kv { request })
        .await
        .map_err(|e| lost(&e))?;
      if let Some(value) = &value {
        write_raw(&mut send, value).await.map_err(|e| lost(&e))?;
      }
      let _ = send.finish();
      let reply = read_frame::<_, KvReply>(&mut recv)
        .await
        .map_err(|e| lost(&e))?
        .ok_or_else(|| unavailable("the control plane closed the KV stream".into()))?;
      let bytes = match reply {
        KvReply::Found { .. } => Some(
          read_raw(&mut recv)
            .await
            .map_err(|e| lost(&e))?
            .ok_or_else(|| unavailable("the control plane closed the KV stream".into()))?,
        ),
        _ => None,
      };
      Ok((reply, bytes))
    };
    match tokio::time::timeout(self.timeout, exchange).await {
      Ok(Ok((KvReply::Failed { error }, _))) => Err(error),
      Ok(result) => result,
      Err(_) => Err(unavailable(format!(
        "the control plane did not answer within {} ms",
        self.timeout.as_millis()
      ))),
    }
  }
}

fn unexpected(reply: &KvReply) -> KvError {
  KvError::Storage(format!(
    "unexpected answer from the control plane: {reply:?}"
  ))
}

impl KvBackend for EdgeKv {
  fn clock(&self) -> &Clock {
    &self.inner.clock
  }

  fn get(&self, namespace: &str, key: &str, cache_ttl: Option<u64>) -> KvFuture<KvRead> {
    let cache_key = CacheKey {
      namespace: namespace.into(),
      key: key.into(),
    };
    let inner = &self.inner;
    if let Some(cached) = inner.cache.get(&cache_key) {
      inner.counters.hits.fetch_add(1, Ordering::Relaxed);
      let now = inner.clock.now();
      let entry = cached
        .entry
        .filter(|entry| !entry.expired(now))
        .map(|entry| KvEntry::clone(&entry));
      return Box::pin(std::future::ready(Ok(KvRead {
        entry,
        cache_status: Some(CacheStatus::Hit),
      })));
    }
    inner.counters.misses.fetch_add(1, Ordering::Relaxed);
    let ttl = cache_ttl
      .map_or(DEFAULT_CACHE_TTL, Duration::from_secs)
      .max(MIN_CACHE_TTL);
    let this = self.shared();
    Box::pin(async move {
      let fetch = this.fetch(&cache_key, ttl);
      let entry = fetch.clone().await;
      // The first miss to finish retires the fetch; later misses start anew.
      if let Ok(mut inflight) = this.inflight.lock()
        && inflight.get(&cache_key).is_some_and(|f| f.ptr_eq(&fetch))
      {
        inflight.remove(&cache_key);
      }
      let entry = entry?;
      Ok(KvRead {
        entry,
        cache_status: Some(CacheStatus::Miss),
      })
    })
  }

  fn put(&self, namespace: &str, key: &str, entry: KvEntry) -> KvFuture<()> {
    let request = KvRequest::Put {
      namespace: namespace.to_owned(),
      key: key.to_owned(),
      metadata: entry.metadata.clone(),
      expiration: entry.expiration,
    };
    let value = entry.value.clone();
    self.write_through(namespace, key, request, Some(value), Some(entry))
  }

  fn delete(&self, namespace: &str, key: &str) -> KvFuture<()> {
    let request = KvRequest::Delete {
      namespace: namespace.to_owned(),
      key: key.to_owned(),
    };
    self.write_through(namespace, key, request, None, None)
  }

  fn list(&self, namespace: &str, options: KvListOptions) -> KvFuture<KvListPage> {
    let this = self.shared();
    let namespace = namespace.to_owned();
    Box::pin(async move {
      match this
        .call(KvRequest::List { namespace, options }, None)
        .await?
      {
        (KvReply::Page(page), _) => Ok(page),
        (reply, _) => Err(unexpected(&reply)),
      }
    })
  }
}
