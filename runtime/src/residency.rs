//! Which idle isolates an executor evicts: those idle past a timeout, and,
//! while more are resident than the budget allows, the least recently used.
//! An evicted worker keeps its version and comes back on its next request.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How many isolates may stay resident on one executor, and for how long an
/// idle one is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidencyPolicy {
  /// Most isolates resident at once on the executor.
  pub max_resident: usize,
  /// An isolate idle this long is evicted.
  pub idle_timeout: Duration,
}

impl Default for ResidencyPolicy {
  fn default() -> Self {
    Self {
      max_resident: usize::MAX,
      idle_timeout: Duration::from_secs(15 * 60),
    }
  }
}

/// A worker's use, as the executor sees it.
#[derive(Debug)]
pub(crate) struct Usage {
  inflight: Cell<usize>,
  /// Requests waiting in the executor for an in-flight slot.
  pub(crate) queued: Cell<usize>,
  last_used: Cell<Instant>,
}

impl Default for Usage {
  fn default() -> Self {
    Self {
      inflight: Cell::new(0),
      queued: Cell::new(0),
      last_used: Cell::new(Instant::now()),
    }
  }
}

impl Usage {
  /// A request has been handed to the isolate.
  pub(crate) fn begin(&self) {
    self.inflight.set(self.inflight.get() + 1);
    self.last_used.set(Instant::now());
  }

  /// A request has been answered (or given up on).
  pub(crate) fn end(&self) {
    self.inflight.set(self.inflight.get().saturating_sub(1));
    self.last_used.set(Instant::now());
  }

  /// Requests in flight now.
  pub(crate) fn inflight(&self) -> usize {
    self.inflight.get()
  }

  fn idle_since(&self) -> Option<Instant> {
    (self.inflight.get() == 0).then(|| self.last_used.get())
  }
}

/// The workers to evict now, from `(name, usage)` of every resident one.
/// Busy workers are never chosen.
pub(crate) fn pick_evictions<'a>(
  resident: impl IntoIterator<Item = (&'a str, &'a Usage)>,
  policy: &ResidencyPolicy,
  now: Instant,
) -> Vec<&'a str> {
  let mut count: usize = 0;
  let mut idle: Vec<(&str, Instant)> = Vec::new();
  for (name, usage) in resident {
    count += 1;
    if let Some(since) = usage.idle_since() {
      idle.push((name, since));
    }
  }
  // Least recently used first.
  idle.sort_by_key(|&(_, since)| since);
  let mut over_budget = count.saturating_sub(policy.max_resident);
  idle
    .into_iter()
    .filter(|&(_, since)| {
      let timed_out = now.saturating_duration_since(since) >= policy.idle_timeout;
      let evict = timed_out || over_budget > 0;
      if evict {
        over_budget = over_budget.saturating_sub(1);
      }
      evict
    })
    .map(|(name, _)| name)
    .collect()
}
