//! Which worker serves a request.
//!
//! [`Routes`] is the node's live routing table. It does not care where its
//! entries come from: `outpost dev` installs one catch-all worker, a local
//! folder of workers installs one entry per folder, and the control plane
//! installs deployments. Each source builds a [`RouteTable`] and swaps it
//! in whole, so a request always sees one consistent table.
//!
//! What the table yields is the name a worker runs under on its executor:
//! the worker's own name, or for a deployed worker `<name>@<version>`,
//! picked by the deployment's split.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock};

use outpost_protocol::RoutePattern;

use crate::assets::AssetSite;

/// One consistent set of routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
  /// Workers reachable by name: Host `<name>.localhost` or path `/<name>/…`.
  named: BTreeSet<String>,
  /// The worker for requests no name matches, if any.
  fallback: Option<String>,
  /// Route patterns to workers, most specific first; tried before names.
  patterns: Vec<(RoutePattern, String)>,
  /// For deployed workers, their versions' executor names, each with the
  /// running total of the split's percentages (the last is 100).
  versions: BTreeMap<String, Vec<(u32, String)>>,
  /// Static assets, by executor name, served before (or instead of) the
  /// worker.
  assets: BTreeMap<String, Arc<AssetSite>>,
}

impl RouteTable {
  /// A table that sends every request to `worker`.
  pub fn catch_all(worker: impl Into<String>) -> Self {
    Self {
      fallback: Some(worker.into()),
      ..Self::default()
    }
  }

  /// A table of workers reachable by name, with no fallback.
  pub fn named(workers: impl IntoIterator<Item = String>) -> Self {
    Self {
      named: workers.into_iter().collect(),
      ..Self::default()
    }
  }

  /// A table for deployed workers: `routes` map patterns to workers, and
  /// `versions` give each worker's versions as `(percent, executor name)`.
  /// Deployed workers are also reachable by name, as in a local folder,
  /// except the user workers of dispatch namespaces.
  pub fn deployed(
    routes: impl IntoIterator<Item = (RoutePattern, String)>,
    versions: BTreeMap<String, Vec<(u8, String)>>,
  ) -> Self {
    // A route to a worker with no deployment would only find nothing on
    // the executor; leaving it out gives the request a plain 404.
    let mut patterns: Vec<_> = routes
      .into_iter()
      .filter(|(_, worker)| versions.contains_key(worker))
      .collect();
    patterns.sort_by(|a, b| RoutePattern::most_specific_first(&a.0, &b.0));
    let versions = versions
      .into_iter()
      .map(|(worker, split)| {
        let mut total = 0;
        let split = split
          .into_iter()
          .map(|(percent, name)| {
            total += u32::from(percent);
            (total, name)
          })
          .collect();
        (worker, split)
      })
      .collect::<BTreeMap<_, _>>();
    Self {
      // A dispatch namespace's user workers (`<namespace>/<name>`) are
      // reached only through its binding.
      named: versions
        .keys()
        .filter(|w| !w.contains('/'))
        .cloned()
        .collect(),
      fallback: None,
      patterns,
      versions,
      assets: BTreeMap::new(),
    }
  }

  /// This table, also serving `workers` by name (`<name>.localhost`,
  /// `/<name>/`, service bindings).
  #[must_use]
  pub fn with_names(mut self, workers: impl IntoIterator<Item = String>) -> Self {
    self.named.extend(workers);
    self
  }

  /// The table with `site` serving the assets of the worker that runs as
  /// `name`.
  #[must_use]
  pub fn with_assets(mut self, name: impl Into<String>, site: Arc<AssetSite>) -> Self {
    self.assets.insert(name.into(), site);
    self
  }

  /// The assets of the worker that runs as `name`, if it has any.
  pub fn assets_for(&self, name: &str) -> Option<&Arc<AssetSite>> {
    self.assets.get(name)
  }

  /// Every worker the table can route to, by executor name.
  pub fn workers(&self) -> impl Iterator<Item = &str> {
    let deployed = self
      .versions
      .values()
      .flatten()
      .map(|(_, name)| name.as_str());
    self
      .named
      .iter()
      .filter(|name| !self.versions.contains_key(*name))
      .map(String::as_str)
      .chain(self.fallback.as_deref())
      .chain(deployed)
  }

  /// The executor name a request to `worker` by name runs on: a deployed
  /// worker's version (picked by its split), else the worker itself if
  /// the table serves it.
  pub fn executor_of(&self, worker: &str) -> Option<&str> {
    match self.versions.get(worker) {
      Some(split) => pick(split),
      None => self
        .named
        .get(worker)
        .map(String::as_str)
        .or(self.fallback.as_deref().filter(|name| *name == worker)),
    }
  }

  /// The executor name of the worker for a request to `host` (with or
  /// without a port) and `path`: the most specific route pattern first,
  /// then a `<name>.localhost` Host, then a `/<name>/` path prefix, then
  /// the fallback. A deployed worker's version is picked by its split.
  pub fn route(&self, host: &str, path: &str) -> Option<&str> {
    let worker = match self
      .patterns
      .iter()
      .find(|(pattern, _)| pattern.matches(host, path))
    {
      Some((_, worker)) => Some(worker.as_str()),
      None => self.by_name(host, path),
    }?;
    match self.versions.get(worker) {
      Some(split) => pick(split),
      None => Some(worker),
    }
  }

  fn by_name(&self, host: &str, path: &str) -> Option<&str> {
    let hostname = host.rsplit_once(':').map_or(host, |(name, port)| {
      if port.bytes().all(|b| b.is_ascii_digit()) {
        name
      } else {
        host
      }
    });
    let by_host = hostname
      .strip_suffix(".localhost")
      .and_then(|name| self.named.get(&name.to_ascii_lowercase()));
    let by_path = || {
      let rest = path.strip_prefix('/')?;
      let name = rest.split_once('/').map_or(rest, |(name, _)| name);
      self.named.get(name)
    };
    by_host
      .or_else(by_path)
      .map(String::as_str)
      .or(self.fallback.as_deref())
  }
}

/// The version a request goes to: the first whose running total passes a
/// random draw in 0..100.
fn pick(split: &[(u32, String)]) -> Option<&str> {
  let draw = (random_u64() % 100) as u32;
  split
    .iter()
    .find(|(total, _)| draw < *total)
    .or(split.last())
    .map(|(_, name)| name.as_str())
}

/// A fast per-thread pseudo-random number (xorshift64*), seeded from the
/// standard library's random hasher keys. Good enough to split traffic.
fn random_u64() -> u64 {
  thread_local! {
    static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()) | 1);
  }
  STATE.with(|state| {
    let mut x = state.get();
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state.set(x);
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
  })
}

/// The node's live routing table, shared by every connection.
#[derive(Debug, Clone, Default)]
pub struct Routes(Arc<RwLock<Arc<RouteTable>>>);

impl Routes {
  /// Live routes starting from `table`.
  pub fn new(table: RouteTable) -> Self {
    Self(Arc::new(RwLock::new(Arc::new(table))))
  }

  /// The table as it is now.
  pub fn current(&self) -> Arc<RouteTable> {
    // A poisoned lock only means a writer panicked between whole-table
    // swaps; the table inside is still consistent.
    self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
  }

  /// Swaps in a new table; requests already routed are unaffected.
  pub fn replace(&self, table: RouteTable) {
    *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
  }
}
