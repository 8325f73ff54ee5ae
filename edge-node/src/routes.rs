//! Which worker serves a request.
//!
//! [`Routes`] is the node's live routing table. It does not care where its
//! entries come from: `outpost dev` installs one catch-all worker, a local
//! folder of workers installs one entry per folder, and the control plane
//! will install deployments. Each source builds a [`RouteTable`] and swaps
//! it in whole, so a request always sees one consistent table.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

/// One consistent set of routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
  /// Workers reachable by name: Host `<name>.localhost` or path `/<name>/…`.
  named: BTreeSet<String>,
  /// The worker for requests no name matches, if any.
  fallback: Option<String>,
}

impl RouteTable {
  /// A table that sends every request to `worker`.
  pub fn catch_all(worker: impl Into<String>) -> Self {
    Self {
      named: BTreeSet::new(),
      fallback: Some(worker.into()),
    }
  }

  /// A table of workers reachable by name, with no fallback.
  pub fn named(workers: impl IntoIterator<Item = String>) -> Self {
    Self {
      named: workers.into_iter().collect(),
      fallback: None,
    }
  }

  /// Every worker the table can route to.
  pub fn workers(&self) -> impl Iterator<Item = &str> {
    self
      .named
      .iter()
      .map(String::as_str)
      .chain(self.fallback.as_deref())
  }

  /// The worker for a request to `host` (with or without a port) and
  /// `path`: a `<name>.localhost` Host first, then a `/<name>/` path
  /// prefix, then the fallback.
  pub fn route(&self, host: &str, path: &str) -> Option<&str> {
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
