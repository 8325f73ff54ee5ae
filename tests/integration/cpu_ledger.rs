//! The CPU ledger splits each stretch of JS among the requests in flight.

use std::time::Duration;

use outpost_runtime::CpuLedger;

const MS: Duration = Duration::from_millis(1);

#[test]
fn a_lone_request_is_charged_every_stretch_in_full() {
  let ledger = CpuLedger::default();
  ledger.open(1);
  assert_eq!(ledger.charge(4 * MS, |_, _| panic!("still open")), 4 * MS);
  assert_eq!(ledger.charge(6 * MS, |_, _| panic!("still open")), 10 * MS);
  ledger.close(1, None);
  let mut finished = Vec::new();
  ledger.charge(2 * MS, |used, _| finished.push(used));
  assert_eq!(finished, [12 * MS]);
  assert_eq!(ledger.most_used(), Duration::ZERO);
}

#[test]
fn a_stretch_is_split_among_the_requests_in_flight() {
  let ledger = CpuLedger::default();
  ledger.open(1);
  ledger.open(2);
  ledger.charge(6 * MS, |_, _| {});
  ledger.close(2, None);
  ledger.open(3);
  let mut finished = Vec::new();
  // Requests 1, 2 (answered in this stretch) and 3 share it.
  assert_eq!(ledger.charge(9 * MS, |used, _| finished.push(used)), 6 * MS);
  assert_eq!(finished, [6 * MS]);
  assert_eq!(ledger.most_used(), 6 * MS);
}

#[test]
fn stretches_with_no_request_charge_nobody() {
  let ledger = CpuLedger::default();
  assert_eq!(
    ledger.charge(5 * MS, |_, _| panic!("nothing open")),
    Duration::ZERO
  );
}
