//! Workers' cron patterns (`triggers.crons`): five fields in UTC, weekdays
//! 1-7 from Sunday as Cloudflare counts them, with `L`, `W` and `#`
//! (parsed by croner), and the next firing of a set of triggers. Shared by
//! the config reader, the control plane (which checks uploads and says
//! when each trigger fires next) and the nodes that fire them.

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

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

/// A time in milliseconds since the Unix epoch as RFC 3339 text, in UTC.
pub fn utc_text(ms: u64) -> String {
  i64::try_from(ms)
    .ok()
    .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
    .map_or_else(
      || ms.to_string(),
      |time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}
