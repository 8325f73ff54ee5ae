//! Cron triggers on a node: Workers' cron patterns (five fields in UTC,
//! weekdays 1-7 from Sunday as Cloudflare reads them, with `L`, `W` and
//! `#`; parsed by croner), the next firing of a set of triggers, running a
//! worker's `scheduled()` for one firing, and what `outpost dev` offers:
//! the `/__scheduled` endpoint and firing on schedule.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use outpost_runtime::{ExecutorHandle, ScheduledEvent, WorkerRequest};

/// The paths `outpost dev` runs a firing on, as wrangler's dev server does.
pub const DEV_PATHS: [&str; 2] = ["/__scheduled", "/cdn-cgi/handler/scheduled"];

/// One cron trigger.
#[derive(Debug, Clone)]
pub struct CronTrigger {
  pattern: String,
  cron: Cron,
}

/// Triggers are the same when their patterns are.
impl PartialEq for CronTrigger {
  fn eq(&self, other: &Self) -> bool {
    self.pattern == other.pattern
  }
}

impl Eq for CronTrigger {}

impl CronTrigger {
  /// Parses a Workers cron pattern.
  pub fn parse(pattern: &str) -> Result<Self, String> {
    let parser = CronParser::builder()
      .seconds(Seconds::Disallowed)
      .year(Year::Disallowed)
      .alternative_weekdays(true)
      .build();
    let cron = parser.parse(pattern).map_err(|err| {
      format!("{pattern:?} is not a cron pattern (minute hour day month weekday, in UTC): {err}")
    })?;
    Ok(Self {
      pattern: pattern.to_owned(),
      cron,
    })
  }

  /// The pattern as configured.
  #[must_use]
  pub fn pattern(&self) -> &str {
    &self.pattern
  }

  /// Its first firing strictly after `after_ms` (milliseconds since the
  /// Unix epoch), if it has one.
  pub fn next_after(&self, after_ms: u64) -> Option<u64> {
    // Whole seconds: croner keeps a fraction it is given.
    let after_s = i64::try_from(after_ms / 1000).ok()?;
    let after: DateTime<Utc> = Utc.timestamp_opt(after_s, 0).single()?;
    let next = self.cron.find_next_occurrence(&after, false).ok()?;
    u64::try_from(next.timestamp_millis()).ok()
  }
}

/// The next firing among `triggers` after `after_ms`: its time, and the
/// triggers due then.
pub fn next_firing(triggers: &[CronTrigger], after_ms: u64) -> Option<(u64, Vec<&CronTrigger>)> {
  let times: Vec<(u64, &CronTrigger)> = triggers
    .iter()
    .filter_map(|trigger| Some((trigger.next_after(after_ms)?, trigger)))
    .collect();
  let first = times.iter().map(|(time, _)| *time).min()?;
  let due = times
    .into_iter()
    .filter(|(time, _)| *time == first)
    .map(|(_, trigger)| trigger)
    .collect();
  Some((first, due))
}

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

#[cfg(test)]
mod tests {
  use super::*;

  /// 2026-12-06 (a Sunday) 10:00:00 UTC.
  const SUNDAY_10AM: u64 = 1_796_551_200_000;
  const MINUTE: u64 = 60_000;

  #[test]
  fn patterns_read_as_workers_reads_them() {
    let every_minute = CronTrigger::parse("* * * * *").expect("parses");
    assert_eq!(
      every_minute.next_after(SUNDAY_10AM),
      Some(SUNDAY_10AM + MINUTE)
    );
    assert_eq!(
      every_minute.next_after(SUNDAY_10AM + 1),
      Some(SUNDAY_10AM + MINUTE)
    );
    // Weekday 1 is Sunday, as Cloudflare counts.
    let sunday_5pm = CronTrigger::parse("0 17 * * 1").expect("parses");
    assert_eq!(
      sunday_5pm.next_after(SUNDAY_10AM),
      Some(SUNDAY_10AM + 7 * 60 * MINUTE)
    );
    let sun = CronTrigger::parse("0 17 * * sun").expect("parses");
    assert_eq!(
      sun.next_after(SUNDAY_10AM),
      sunday_5pm.next_after(SUNDAY_10AM)
    );
    // The last Friday of the month: 2026-12-25.
    let last_friday = CronTrigger::parse("0 18 * * 6L").expect("parses");
    let christmas_6pm = SUNDAY_10AM + 19 * 24 * 60 * MINUTE + 8 * 60 * MINUTE;
    assert_eq!(last_friday.next_after(SUNDAY_10AM), Some(christmas_6pm));
    assert!(CronTrigger::parse("* * * *").is_err());
    assert!(
      CronTrigger::parse("0 0 * * * *").is_err(),
      "no seconds field"
    );
    assert!(CronTrigger::parse("61 * * * *").is_err());
  }

  #[test]
  fn the_next_firing_gathers_the_triggers_due_together() {
    let triggers = [
      CronTrigger::parse("*/5 * * * *").expect("parses"),
      CronTrigger::parse("*/15 * * * *").expect("parses"),
    ];
    let (at, due) = next_firing(&triggers, SUNDAY_10AM).expect("a firing");
    assert_eq!(at, SUNDAY_10AM + 5 * MINUTE);
    assert_eq!(due.len(), 1);
    let (at, due) = next_firing(&triggers, SUNDAY_10AM + 10 * MINUTE).expect("a firing");
    assert_eq!(at, SUNDAY_10AM + 15 * MINUTE);
    assert_eq!(due.len(), 2);
  }

  #[test]
  fn dev_paths_take_cron_and_time() {
    let event = dev_trigger("/__scheduled", Some("cron=*/5+*+*+*+*&time=42"), 7).expect("a firing");
    assert_eq!(
      event,
      ScheduledEvent {
        cron: "*/5 * * * *".into(),
        scheduled_time_ms: 42
      }
    );
    let event = dev_trigger("/cdn-cgi/handler/scheduled", None, 7).expect("a firing");
    assert_eq!(event.scheduled_time_ms, 7);
    assert!(dev_trigger("/other", None, 7).is_none());
  }
}
