//! CPU time charged to the requests in flight in one isolate.
//!
//! The isolate's event loop runs the JS of all its requests interleaved, and
//! a stretch of JS cannot say which request it worked for. So each stretch's
//! CPU time is split evenly among the requests in flight during it (those
//! still open at its end and those answered within it). A request alone in
//! its isolate is charged exactly; with company, the charge is its fair
//! share.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use deno_core::ResourceId;

/// The charge of every request in flight in one isolate, shared between the
/// serve ops (which open and close requests) and the isolate's watch (which
/// charges each stretch).
#[derive(Clone, Default)]
pub struct CpuLedger(Rc<RefCell<Charges>>);

#[derive(Default)]
struct Charges {
  open: HashMap<ResourceId, Open>,
  /// Requests answered since the last charge, with what they had used, and
  /// their summaries where their worker is tailed.
  closed: Vec<(Duration, Option<RequestSummary>)>,
}

/// An open request's charge: what it has used, and its own CPU budget if
/// its caller set one tighter than the worker's.
struct Open {
  used: Duration,
  budget: Option<Duration>,
}

/// What a request's log summary says, apart from its CPU time.
#[derive(Debug, Clone)]
pub struct RequestSummary {
  /// The method.
  pub method: String,
  /// The URL.
  pub url: String,
  /// The status answered (0: none was).
  pub status: u16,
  /// `ok`, `exception`, or a limit's code.
  pub outcome: &'static str,
  /// From arrival to end.
  pub wall: Duration,
  /// Its `cf-ray`.
  pub ray: Option<String>,
}

impl CpuLedger {
  /// Starts charging a request, under its caller's `budget` if it has one.
  pub fn open(&self, rid: ResourceId, budget: Option<Duration>) {
    let open = Open {
      used: Duration::ZERO,
      budget,
    };
    self.0.borrow_mut().open.insert(rid, open);
  }

  /// Stops charging a request once the current stretch has been charged;
  /// its `summary` is handed on with its total then.
  pub fn close(&self, rid: ResourceId, summary: Option<RequestSummary>) {
    let mut charges = self.0.borrow_mut();
    if let Some(open) = charges.open.remove(&rid) {
      charges.closed.push((open.used, summary));
    }
  }

  /// The least CPU any open request has left: of its own budget, or of
  /// `budget` (the worker's) where that is lower or it has none.
  pub fn least_left(&self, budget: Duration) -> Duration {
    self
      .0
      .borrow()
      .open
      .values()
      .map(|open| open.left(budget))
      .min()
      .unwrap_or(budget)
  }

  /// Splits `cpu` among the requests in flight during the stretch that used
  /// it; passes each request answered in it, with its total and summary,
  /// to `finished`. Returns whether a still-open request has now used
  /// more than its budget (see [`CpuLedger::least_left`]).
  pub fn charge(
    &self,
    cpu: Duration,
    budget: Duration,
    mut finished: impl FnMut(Duration, Option<RequestSummary>),
  ) -> bool {
    let mut charges = self.0.borrow_mut();
    let Charges { open, closed } = &mut *charges;
    let sharing = open.len() + closed.len();
    if sharing == 0 {
      return false;
    }
    let share = cpu / sharing as u32;
    for (used, summary) in closed.drain(..) {
      finished(used + share, summary);
    }
    open.values_mut().fold(false, |over, open| {
      open.used += share;
      over || open.used > open.budget.map_or(budget, |own| own.min(budget))
    })
  }
}

impl Open {
  fn left(&self, budget: Duration) -> Duration {
    let budget = self.budget.map_or(budget, |own| own.min(budget));
    budget.saturating_sub(self.used)
  }
}
