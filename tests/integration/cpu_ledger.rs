//! The CPU ledger splits each stretch of JS among the requests in flight,
//! and holds each to its budget: the worker's, or its caller's if lower.

use std::time::Duration;

use outpost_runtime::CpuLedger;

const MS: Duration = Duration::from_millis(1);
/// The worker's own budget in these tests.
const WORKER: Duration = Duration::from_millis(50);

#[test]
fn a_lone_request_is_charged_every_stretch_in_full() {
  let ledger = CpuLedger::default();
  ledger.open(1, None);
  assert!(!ledger.charge(4 * MS, WORKER, |_, _| panic!("still open")));
  assert_eq!(ledger.least_left(WORKER), 46 * MS);
  assert!(!ledger.charge(6 * MS, WORKER, |_, _| panic!("still open")));
  assert_eq!(ledger.least_left(WORKER), 40 * MS);
  ledger.close(1, None);
  let mut finished = Vec::new();
  ledger.charge(2 * MS, WORKER, |used, _| finished.push(used));
  assert_eq!(finished, [12 * MS]);
  assert_eq!(ledger.least_left(WORKER), WORKER);
}

#[test]
fn a_stretch_is_split_among_the_requests_in_flight() {
  let ledger = CpuLedger::default();
  ledger.open(1, None);
  ledger.open(2, None);
  ledger.charge(6 * MS, WORKER, |_, _| {});
  ledger.close(2, None);
  ledger.open(3, None);
  let mut finished = Vec::new();
  // Requests 1, 2 (answered in this stretch) and 3 share it.
  assert!(!ledger.charge(9 * MS, WORKER, |used, _| finished.push(used)));
  assert_eq!(finished, [6 * MS]);
  assert_eq!(ledger.least_left(WORKER), 44 * MS);
}

#[test]
fn stretches_with_no_request_charge_nobody() {
  let ledger = CpuLedger::default();
  assert!(!ledger.charge(5 * MS, WORKER, |_, _| panic!("nothing open")));
}

#[test]
fn a_callers_budget_binds_only_its_request() {
  let ledger = CpuLedger::default();
  ledger.open(1, None);
  ledger.open(2, Some(10 * MS));
  assert_eq!(ledger.least_left(WORKER), 10 * MS);
  assert!(!ledger.charge(16 * MS, WORKER, |_, _| {}));
  assert_eq!(ledger.least_left(WORKER), 2 * MS);
  // Request 2 is over its 10 ms; request 1 is far from the worker's 50.
  assert!(ledger.charge(6 * MS, WORKER, |_, _| {}));
  ledger.close(2, None);
  ledger.charge(Duration::ZERO, WORKER, |_, _| {});
  assert_eq!(ledger.least_left(WORKER), 39 * MS);
}

#[test]
fn a_callers_budget_cannot_raise_the_workers() {
  let ledger = CpuLedger::default();
  ledger.open(1, Some(500 * MS));
  assert_eq!(ledger.least_left(WORKER), WORKER);
  assert!(ledger.charge(51 * MS, WORKER, |_, _| {}));
}
