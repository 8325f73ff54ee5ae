//! Cron triggers on a node (patterns: `outpost_protocol::cron`): running a
//! worker's `scheduled()` for one firing, and what `outpost dev` offers:
//! the `/__scheduled` endpoint and firing on schedule.

use std::future::Future;
use std::time::{Duration, Instant};

pub use outpost_protocol::cron::{CronTrigger, next_firing};
use outpost_runtime::{ExecutorHandle, ScheduledEvent, WorkerRequest};

/// The paths `outpost dev` runs a firing on, as wrangler's dev server does.
pub const DEV_PATHS: [&str; 2] = ["/__scheduled", "/cdn-cgi/handler/scheduled"];

/// What running one firing came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledOutcome {
  /// The handler completed (it did not throw, and there was one).
  pub ok: bool,
  /// How long it took, `waitUntil` work not included.
  pub duration: Duration,
}

/// Runs `worker`'s `scheduled()` for `event` on `executor`.
pub async fn run_scheduled(
  executor: &ExecutorHandle,
  worker: &str,
  event: ScheduledEvent,
) -> ScheduledOutcome {
  let started = Instant::now();
  let answer = executor
    .dispatch(worker, WorkerRequest::scheduled(event))
    .await;
  ScheduledOutcome {
    ok: answer.is_ok_and(|response| response.status.is_success()),
    duration: started.elapsed(),
  }
}

/// The firing a request to one of [`DEV_PATHS`] asks for: `cron` and
/// `time` (milliseconds) from the query, else `"* * * * *"` and now.
pub fn dev_trigger(path: &str, query: Option<&str>, now_ms: u64) -> Option<ScheduledEvent> {
  if !DEV_PATHS.contains(&path) {
    return None;
  }
  let mut event = ScheduledEvent {
    cron: "* * * * *".to_owned(),
    scheduled_time_ms: now_ms,
  };
  for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
    match key.as_ref() {
      "cron" => event.cron = value.into_owned(),
      "time" => event.scheduled_time_ms = value.parse().unwrap_or(now_ms),
      _ => {}
    }
  }
  Some(event)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
  std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Fires `triggers` for `worker` as their times come, until `stop`
/// resolves: `outpost dev`'s schedule. The wall clock is read once, as
/// `start_ms`, and followed on Tokio's clock after, so a test can move it.
/// Each firing is reported to `report` with the trigger and its outcome.
pub async fn fire_on_schedule(
  executor: ExecutorHandle,
  worker: String,
  triggers: Vec<CronTrigger>,
  start_ms: u64,
  mut report: impl FnMut(&str, u64, ScheduledOutcome),
  stop: impl Future<Output = ()>,
) {
  let started = tokio::time::Instant::now();
  let clock = |at: tokio::time::Instant| {
    start_ms + u64::try_from((at - started).as_millis()).unwrap_or(u64::MAX)
  };
  let mut after = start_ms;
  tokio::pin!(stop);
  while let Some((due, crons)) = next_firing(&triggers, after) {
    let wait = Duration::from_millis(due.saturating_sub(clock(tokio::time::Instant::now())));
    tokio::select! {
      () = &mut stop => return,
      () = tokio::time::sleep(wait) => {}
    }
    for trigger in crons {
      let event = ScheduledEvent {
        cron: trigger.pattern().to_owned(),
        scheduled_time_ms: due,
      };
      let outcome = run_scheduled(&executor, &worker, event).await;
      report(trigger.pattern(), due, outcome);
    }
    after = due;
  }
}
