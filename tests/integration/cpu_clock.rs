//! The executor's CPU clock: read for long stretches of JS, estimated from
//! a recent reading for the start of each stretch.

use std::time::Duration;

use outpost_runtime::limits::{CPU_CLOCK_REFRESH, CpuWatchdog, thread_cpu_time};

/// Burns roughly `micros` of CPU time on the calling thread.
fn spin(micros: u64) {
  let start = thread_cpu_time();
  while thread_cpu_time() - start < Duration::from_micros(micros) {}
}

#[test]
fn the_estimate_never_falls_below_the_clock() {
  let watchdog = CpuWatchdog::start_for_current_thread().expect("watchdog");
  for round in 0..2_000 {
    let before = thread_cpu_time();
    let estimate = watchdog.cpu_clock();
    // The thread CPU clock and the monotonic clock come from different
    // kernel sources; allow them a microsecond of disagreement.
    assert!(
      estimate + Duration::from_micros(1) >= before,
      "round {round}: estimate {estimate:?} below the clock {before:?}"
    );
    spin(round % 7);
  }
}

#[test]
fn a_stale_reading_is_replaced_not_extrapolated() {
  let watchdog = CpuWatchdog::start_for_current_thread().expect("watchdog");
  let first = watchdog.read_cpu_clock();
  // Asleep, the thread uses no CPU, but an estimate grows with wall time
  // until the reading is stale; then the clock is read again.
  std::thread::sleep(CPU_CLOCK_REFRESH * 4);
  let refreshed = watchdog.cpu_clock();
  assert!(
    refreshed - first < CPU_CLOCK_REFRESH,
    "a stale reading was extrapolated: {first:?} -> {refreshed:?}"
  );
  spin(3_000);
  let used = watchdog.read_cpu_clock() - refreshed;
  assert!(
    used >= Duration::from_millis(3),
    "read {used:?} for 3 ms of CPU"
  );
}
