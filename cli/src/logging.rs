//! Logging and tracing set-up: log lines on stderr (text or JSON), and,
//! when an OTLP endpoint is given, request spans exported as traces.

use std::io::IsTerminal;

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
  /// For people.
  Text,
  /// One JSON object per line, for collectors.
  Json,
}

/// What exports traces; flush it before the process exits.
pub struct Traces(Option<SdkTracerProvider>);

impl Traces {
  /// Sends what is still buffered.
  pub fn shutdown(self) {
    if let Some(provider) = self.0
      && let Err(err) = provider.shutdown()
    {
      eprintln!("warning: flushing traces: {err}");
    }
  }
}

/// What spans become traces: the request spans and everything at info.
const TRACED: &str = "info,outpost_edge::server=debug,outpost_edge::h3=debug";

/// Installs the global subscriber: `filter` (tracing's EnvFilter syntax)
/// for log lines in `format`, and traces to `otlp` (an OTLP/HTTP
/// collector's base URL) if given.
pub fn init(filter: &str, format: LogFormat, otlp: Option<&str>) -> anyhow::Result<Traces> {
  let filter =
    EnvFilter::try_new(filter).with_context(|| format!("--log {filter:?} is not a filter"))?;
  let lines = match format {
    LogFormat::Text => tracing_subscriber::fmt::layer()
      .with_writer(std::io::stderr)
      .with_ansi(std::io::stderr().is_terminal())
      .boxed(),
    // Spans (a request's worker, version, ...) ride along on each line.
    LogFormat::Json => tracing_subscriber::fmt::layer()
      .json()
      .with_current_span(true)
      .with_writer(std::io::stderr)
      .boxed(),
  };
  let provider = otlp.map(exporter).transpose()?;
  let traces = provider.as_ref().map(|provider| {
    tracing_opentelemetry::layer()
      .with_tracer(provider.tracer("outpost"))
      .with_filter(EnvFilter::new(TRACED))
  });
  tracing_subscriber::registry()
    .with(lines.with_filter(filter))
    .with(traces)
    .init();
  Ok(Traces(provider))
}

/// A tracer provider batching spans to the collector at `base`.
fn exporter(base: &str) -> anyhow::Result<SdkTracerProvider> {
  let base = base.trim_end_matches('/');
  let endpoint = if base.ends_with("/v1/traces") {
    base.to_owned()
  } else {
    format!("{base}/v1/traces")
  };
  let exporter = opentelemetry_otlp::SpanExporter::builder()
    .with_http()
    .with_endpoint(endpoint)
    .build()
    .context("setting up the OTLP exporter")?;
  let resource = opentelemetry_sdk::Resource::builder()
    .with_service_name("outpost")
    .build();
  Ok(
    SdkTracerProvider::builder()
      .with_batch_exporter(exporter)
      .with_resource(resource)
      .build(),
  )
}
