//! The node's response cache behind the Cache API: one moka cache per node,
//! bounded in bytes, with each entry's lifetime from its Cache-Control.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use moka::Expiry;
use moka::sync::Cache;

/// What one stored response is keyed by: the worker, its cache (`None`:
/// `caches.default`), and the request URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
  /// The worker that stored it; no worker sees another's entries.
  pub worker: Arc<str>,
  /// `caches.open(name)`'s name, or `None` for `caches.default`.
  pub cache: Option<String>,
  /// The request URL, without its fragment.
  pub url: String,
}

/// A stored response.
#[derive(Debug)]
pub struct CachedResponse {
  /// Its status.
  pub status: u16,
  /// Its headers, in order.
  pub headers: Vec<(String, String)>,
  /// Its whole body.
  pub body: Bytes,
  /// The request headers its `Vary` names, as they were when it was stored
  /// (`None`: the request had no such header).
  pub vary: Vec<(String, Option<String>)>,
  /// When it was stored.
  pub stored_at: Instant,
  /// How long it is fresh.
  pub lifetime: Duration,
}

impl CachedResponse {
  /// Whether a request with `headers` differs, in a header `Vary` names,
  /// from the one this response was stored for.
  pub fn varies_with(&self, headers: &[(String, String)]) -> bool {
    self
      .vary
      .iter()
      .any(|(name, stored)| header(headers, name) != stored.as_deref())
  }

  fn weight(&self) -> u32 {
    let headers: usize = self.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    u32::try_from(self.body.len() + headers + 128).unwrap_or(u32::MAX)
  }
}

/// The first value of header `name` (lowercase) in `headers`.
pub fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
  headers
    .iter()
    .find(|(n, _)| n.eq_ignore_ascii_case(name))
    .map(|(_, v)| v.as_str())
}

/// Why a response is not stored, though `put` succeeds (as in Workers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
  /// `no-store`, `no-cache` or `private`.
  Forbidden,
  /// No `s-maxage`, `max-age` or future `Expires`, or a lifetime of zero.
  NoLifetime,
  /// It sets a cookie.
  SetsCookie,
  /// Larger than the cache allows for one entry.
  TooLarge,
}

/// How long a response with `headers` may be served from the cache:
/// `s-maxage`, else `max-age`, less any `Age` it already has; else
/// `Expires` less `Date` (or now).
pub fn lifetime(headers: &[(String, String)]) -> Result<Duration, NotStored> {
  if header(headers, "set-cookie").is_some() {
    return Err(NotStored::SetsCookie);
  }
  let mut max_age = None;
  let mut shared_max_age = None;
  for value in headers
    .iter()
    .filter(|(n, _)| n.eq_ignore_ascii_case("cache-control"))
    .map(|(_, v)| v)
  {
    for directive in value.split(',') {
      let (name, argument) = directive
        .split_once('=')
        .map_or((directive, None), |(n, a)| (n, Some(a)));
      let seconds = || argument.and_then(|a| a.trim().trim_matches('"').parse::<u64>().ok());
      match name.trim().to_ascii_lowercase().as_str() {
        "no-store" | "no-cache" | "private" => return Err(NotStored::Forbidden),
        "max-age" => max_age = seconds(),
        "s-maxage" => shared_max_age = seconds(),
        _ => {}
      }
    }
  }
  let Some(seconds) = shared_max_age.or(max_age) else {
    return expires_in(headers);
  };
  let age = header(headers, "age")
    .and_then(|a| a.trim().parse::<u64>().ok())
    .unwrap_or(0);
  match seconds.saturating_sub(age) {
    0 => Err(NotStored::NoLifetime),
    left => Ok(Duration::from_secs(left)),
  }
}

/// The lifetime `Expires` gives, counted from `Date` if there is one. An
/// `Expires` that is not a date (`0`, say) is already past.
fn expires_in(headers: &[(String, String)]) -> Result<Duration, NotStored> {
  let expires = header(headers, "expires").ok_or(NotStored::NoLifetime)?;
  let expires = httpdate::parse_http_date(expires.trim()).map_err(|_| NotStored::NoLifetime)?;
  let date = header(headers, "date")
    .and_then(|d| httpdate::parse_http_date(d.trim()).ok())
    .unwrap_or_else(SystemTime::now);
  match expires.duration_since(date) {
    Ok(left) if left >= Duration::from_secs(1) => Ok(left),
    _ => Err(NotStored::NoLifetime),
  }
}

/// Each entry expires its own lifetime after it was stored (or replaced).
struct ByLifetime;

impl Expiry<CacheKey, Arc<CachedResponse>> for ByLifetime {
  fn expire_after_create(
    &self,
    _key: &CacheKey,
    value: &Arc<CachedResponse>,
    _created_at: Instant,
  ) -> Option<Duration> {
    Some(value.lifetime)
  }

  fn expire_after_update(
    &self,
    _key: &CacheKey,
    value: &Arc<CachedResponse>,
    _updated_at: Instant,
    _duration_until_expiry: Option<Duration>,
  ) -> Option<Duration> {
    Some(value.lifetime)
  }
}

/// A node's response cache, shared by all its executors.
#[derive(Clone)]
pub struct ResponseCache {
  entries: Cache<CacheKey, Arc<CachedResponse>>,
  max_entry_bytes: u64,
}

impl std::fmt::Debug for ResponseCache {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("ResponseCache")
      .field("entries", &self.entries.entry_count())
      .field("bytes", &self.entries.weighted_size())
      .finish()
  }
}

/// The default budget: 64 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

impl Default for ResponseCache {
  fn default() -> Self {
    Self::new(DEFAULT_CACHE_BYTES)
  }
}

impl ResponseCache {
  /// A cache holding at most `capacity` bytes of responses; one response
  /// may take at most an eighth of it.
  pub fn new(capacity: u64) -> Self {
    let entries = Cache::builder()
      .max_capacity(capacity)
      .weigher(|_key: &CacheKey, value: &Arc<CachedResponse>| value.weight())
      .expire_after(ByLifetime)
      .build();
    Self {
      entries,
      max_entry_bytes: capacity / 8,
    }
  }

  /// Stores `response` under `key`, unless its headers or size forbid it.
  pub fn put(&self, key: CacheKey, response: CachedResponse) -> Result<(), NotStored> {
    if u64::from(response.weight()) > self.max_entry_bytes {
      return Err(NotStored::TooLarge);
    }
    self.entries.insert(key, Arc::new(response));
    Ok(())
  }

  /// The fresh response under `key` for a request with `headers`.
  pub fn get(&self, key: &CacheKey, headers: &[(String, String)]) -> Option<Arc<CachedResponse>> {
    let entry = self.entries.get(key)?;
    let fresh = entry.stored_at.elapsed() < entry.lifetime;
    (fresh && !entry.varies_with(headers)).then_some(entry)
  }

  /// Removes the response under `key`; whether there was one.
  pub fn delete(&self, key: &CacheKey) -> bool {
    self.entries.remove(key).is_some()
  }
}
