//! `outpost tail`: a worker's live events (console lines, uncaught
//! exceptions, request summaries) from every edge, as they happen.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::{Args, ValueEnum};
use futures::StreamExt;
use outpost_edge::config::read_project;
use outpost_protocol::tail::{TailEvent, TailKind};

use super::api::{Api, ApiArgs};

/// Arguments of `outpost tail`.
#[derive(Args)]
pub struct TailArgs {
  /// The worker (default: `name` in ./outpost.toml).
  worker: Option<String>,
  /// How to print events: `pretty` for people, `json` one object per line.
  #[arg(long, value_enum, default_value_t = Format::Pretty)]
  format: Format,
  /// Only failures (5xx answers and error-level lines), or only the rest.
  #[arg(long, value_enum)]
  status: Option<Outcome>,
  /// Only events whose message or URL contains this text.
  #[arg(long)]
  search: Option<String>,
  /// The config environment (`[env.<name>]`) naming the worker when none
  /// is given: `<name>-<env>` unless the environment names it.
  #[arg(long, short = 'e', value_name = "ENV")]
  env: Option<String>,
  /// The dispatch namespace the worker is a user worker of, if it is one.
  #[arg(long, value_name = "NAMESPACE")]
  dispatch_namespace: Option<String>,
  #[command(flatten)]
  api: ApiArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
  Pretty,
  Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Outcome {
  Ok,
  Error,
}

impl TailArgs {
  fn keeps(&self, event: &TailEvent) -> bool {
    let status = match self.status {
      Some(Outcome::Error) => event.is_error(),
      Some(Outcome::Ok) => !event.is_error(),
      None => true,
    };
    let search = self
      .search
      .as_ref()
      .is_none_or(|text| event.text().contains(text.as_str()));
    // Drops are always shown: they say the view has gaps.
    matches!(event.kind, TailKind::Dropped { .. }) || (status && search)
  }
}

/// `HH:MM:SS.mmm` (UTC) of a time in milliseconds since the Unix epoch.
fn clock(time_ms: u64) -> String {
  let seconds = time_ms / 1000;
  format!(
    "{:02}:{:02}:{:02}.{:03}",
    seconds / 3600 % 24,
    seconds / 60 % 60,
    seconds % 60,
    time_ms % 1000
  )
}

fn pretty(event: &TailEvent) -> String {
  let who = match event.version {
    Some(version) => format!("{}@v{version}", event.worker),
    None => event.worker.clone(),
  };
  let ray = event
    .ray
    .as_ref()
    .map(|ray| format!("  ray={ray}"))
    .unwrap_or_default();
  let what = match &event.kind {
    TailKind::Log { level, message } => format!("({level}) {message}"),
    TailKind::Request {
      method,
      url,
      status,
      cpu_ms,
      wall_ms,
      outcome,
    } => {
      let outcome = if outcome == "ok" {
        String::new()
      } else {
        format!(" ({outcome})")
      };
      format!("{method} {url} -> {status}{outcome}, {cpu_ms:.1} ms CPU, {wall_ms} ms")
    }
    TailKind::Scheduled {
      cron,
      scheduled_ms,
      outcome,
      wall_ms,
      delay_ms,
    } => format!(
      "scheduled {cron:?} for {} -> {outcome}, {wall_ms} ms, started {delay_ms} ms late",
      clock(*scheduled_ms)
    ),
    TailKind::Dropped { count } => {
      format!("{count} events dropped (a tail buffer was full)")
    }
  };
  format!(
    "{} [{}] {who} {what}{ray}",
    clock(event.time_ms),
    event.edge
  )
}

/// Runs `outpost tail` until the control plane closes the stream or Ctrl-C.
pub fn run(args: TailArgs) -> anyhow::Result<()> {
  let api = Api::new(&args.api)?;
  let worker = match &args.worker {
    Some(worker) => worker.clone(),
    None => read_project(Path::new("."), args.env.as_deref())?
      .and_then(|c| c.name)
      .context("which worker? name it, or run in a project folder whose config has `name = ...`")?,
  };
  let runtime = tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .context("starting Tokio")?;
  runtime.block_on(async {
    let path = super::dispatch::worker_path(args.dispatch_namespace.as_deref(), &worker);
    let response = api.open(&format!("{path}/tail")).await?;
    let mut body = response.bytes_stream();
    let mut buffer = Vec::new();
    let stdout = std::io::stdout();
    while let Some(chunk) = body.next().await {
      buffer.extend_from_slice(&chunk.context("the tail stream broke")?);
      while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = buffer.drain(..=end).collect();
        let line = &line[..line.len() - 1];
        if line.is_empty() {
          continue;
        }
        let value: serde_json::Value = match serde_json::from_slice(line) {
          Ok(value) => value,
          Err(err) => {
            eprintln!("outpost tail: skipping a malformed line: {err}");
            continue;
          }
        };
        if value["type"] == "tailing" {
          eprintln!(
            "outpost tail: tailing {worker} on every edge of {} (Ctrl-C to stop)",
            api.base()
          );
          continue;
        }
        let Ok(event) = serde_json::from_value::<TailEvent>(value) else {
          continue;
        };
        if !args.keeps(&event) {
          continue;
        }
        let mut out = stdout.lock();
        let written = match args.format {
          Format::Json => out.write_all(line).and_then(|()| out.write_all(b"\n")),
          Format::Pretty => writeln!(out, "{}", pretty(&event)),
        };
        // A closed pipe (`| head`) ends the tail quietly.
        if written.and_then(|()| out.flush()).is_err() {
          return Ok(());
        }
      }
    }
    anyhow::bail!("the control plane closed the tail")
  })
}
