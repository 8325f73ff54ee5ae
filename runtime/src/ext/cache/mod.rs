//! The `cache` area: the Cache API (`caches.default`, `caches.open`).
//!
//! Responses live in the node's [`ResponseCache`] ([`store`]), a moka cache
//! bounded in bytes, keyed by worker, cache name and URL, each entry
//! expiring after its `s-maxage` or `max-age`. The JS
//! (`js-api/src/cache/10_cache.js`) reads bodies whole and hands them to
//! [`ops`].

mod error;
mod ops;
pub mod store;

pub use ops::CacheScope;
pub use store::ResponseCache;

deno_core::extension!(
  outpost_cache,
  deps = [deno_web, deno_fetch],
  ops = [ops::op_cache_put, ops::op_cache_match, ops::op_cache_delete],
  esm = [
    dir "../js-api/src",
    "ext:outpost_cache/10_cache.js" = "cache/10_cache.js",
  ],
);
