//! Live logs (`outpost tail`): what edges send the control plane while
//! someone tails a worker, and what the control plane streams to `outpost
//! tail`, one JSON object per line.

use serde::{Deserialize, Serialize};

/// One event of a tailed worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TailEvent {
  /// When, in milliseconds since the Unix epoch.
  pub time_ms: u64,
  /// The worker's name.
  pub worker: String,
  /// The version that served, where versions are numbered.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub version: Option<u64>,
  /// The edge node; the control plane fills it in.
  #[serde(default)]
  pub edge: String,
  /// The request's `cf-ray`, when the event belongs to a request.
  #[serde(default, skip_serializing_if = "Option::is_none")]
  pub ray: Option<String>,
  /// What happened.
  #[serde(flatten)]
  pub kind: TailKind,
}

/// What a [`TailEvent`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TailKind {
  /// A `console.*` line or an uncaught exception (level `error`).
  Log {
    /// `debug`, `info`, `warn` or `error`.
    level: String,
    /// The text.
    message: String,
  },
  /// A request's summary, once its response head went out.
  Request {
    /// The method.
    method: String,
    /// The URL.
    url: String,
    /// The status.
    status: u16,
    /// Its share of the isolate's CPU time, in milliseconds.
    cpu_ms: f64,
    /// Milliseconds from its arrival in the isolate to its end.
    wall_ms: u64,
    /// `ok`, `exception`, or the limit that stopped it (`cpu-limit`,
    /// `memory-limit`, `wall-limit`).
    outcome: String,
  },
  /// A cron firing's summary, from the control plane that handed it out.
  Scheduled {
    /// The trigger's pattern.
    cron: String,
    /// The time it was scheduled for, in milliseconds since the Unix
    /// epoch.
    scheduled_ms: u64,
    /// `ok` or `exception`.
    outcome: String,
    /// How long it ran, in milliseconds.
    wall_ms: u64,
    /// How long after its scheduled time it started, in milliseconds.
    delay_ms: u64,
  },
  /// Events the edge dropped because its buffer was full.
  Dropped {
    /// How many.
    count: u64,
  },
}

impl TailEvent {
  /// Whether it reports a failure: a 5xx, an outcome other than `ok`, or
  /// a line at level `error`.
  pub fn is_error(&self) -> bool {
    match &self.kind {
      TailKind::Log { level, .. } => level == "error",
      TailKind::Request {
        status, outcome, ..
      } => *status >= 500 || outcome != "ok",
      TailKind::Scheduled { outcome, .. } => outcome != "ok",
      TailKind::Dropped { .. } => false,
    }
  }

  /// The text a `--search` looks in.
  pub fn text(&self) -> String {
    match &self.kind {
      TailKind::Log { message, .. } => message.clone(),
      TailKind::Request { method, url, .. } => format!("{method} {url}"),
      TailKind::Scheduled { cron, .. } => format!("scheduled {cron}"),
      TailKind::Dropped { count } => format!("{count} events dropped"),
    }
  }
}

/// Events from one edge, on its logs stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TailBatch {
  /// The events, oldest first.
  pub events: Vec<TailEvent>,
}
