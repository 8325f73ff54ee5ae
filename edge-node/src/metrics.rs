//! The admin endpoint: `GET /metrics` in the Prometheus text format, on its
//! own port so it is never routed to a worker.

use std::convert::Infallible;
use std::fmt::Write;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use outpost_runtime::{CPU_BUCKETS, CpuHistogram, ExecutorStats};
use tokio::net::TcpListener;

use crate::dispatch::Dispatcher;
use crate::traffic::Traffic;

/// Renders `stats` in the Prometheus text format.
pub fn render(stats: &ExecutorStats) -> String {
  let gauges = [
    (
      "outpost_live_isolates",
      "Workers with a live isolate.",
      stats.resident as u64,
    ),
    (
      "outpost_dormant_workers",
      "Workers without an isolate (not yet asked for, or evicted).",
      stats.dormant as u64,
    ),
    (
      "outpost_pooled_isolates",
      "Pre-warmed blank isolates ready.",
      stats.pooled as u64,
    ),
  ];
  let counters = [
    (
      "outpost_evictions_total",
      "Idle isolates evicted.",
      stats.evictions,
    ),
    (
      "outpost_warm_starts_total",
      "Workers started from a pooled isolate.",
      stats.warm_starts,
    ),
    (
      "outpost_cold_starts_total",
      "Workers started in a new isolate.",
      stats.cold_starts,
    ),
  ];
  let mut out = String::new();
  for (name, help, value) in gauges {
    let _ = writeln!(
      out,
      "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
  }
  for (name, help, value) in counters {
    let _ = writeln!(
      out,
      "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
  }
  let name = "outpost_terminations_total";
  let _ = writeln!(
    out,
    "# HELP {name} Isolates or requests stopped by a limit.\n# TYPE {name} counter"
  );
  for (reason, value) in [
    ("cpu-limit", stats.cpu_limit),
    ("memory-limit", stats.memory_limit),
    ("wall-limit", stats.wall_limit),
    ("overloaded", stats.overloaded),
  ] {
    let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {value}");
  }
  render_cpu_histogram(&mut out, &stats.requests_cpu);
  out
}

fn render_cpu_histogram(out: &mut String, histogram: &CpuHistogram) {
  let name = "outpost_request_cpu_seconds";
  let _ = writeln!(
    out,
    "# HELP {name} CPU time per request (its share of the JS stretches it was in flight for).\n# TYPE {name} histogram"
  );
  let mut cumulative = 0;
  for (bound, count) in CPU_BUCKETS.iter().zip(histogram.buckets) {
    cumulative += count;
    let _ = writeln!(
      out,
      "{name}_bucket{{le=\"{}\"}} {cumulative}",
      bound.as_secs_f64()
    );
  }
  let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", histogram.count);
  let _ = writeln!(out, "{name}_sum {}", histogram.sum.as_secs_f64());
  let _ = writeln!(out, "{name}_count {}", histogram.count);
}

async fn answer(
  dispatcher: Arc<Dispatcher>,
  traffic: Arc<Traffic>,
  req: http::Request<Incoming>,
) -> http::Response<Full<Bytes>> {
  if req.uri().path() != "/metrics" {
    let mut response = http::Response::new(Full::new(Bytes::from_static(b"Try /metrics.\n")));
    *response.status_mut() = http::StatusCode::NOT_FOUND;
    return response;
  }
  let mut body = render(&dispatcher.stats().await);
  traffic.render(&mut body);
  let mut response = http::Response::new(Full::new(Bytes::from(body)));
  response.headers_mut().insert(
    http::header::CONTENT_TYPE,
    http::HeaderValue::from_static("text/plain; version=0.0.4"),
  );
  response
}

/// Serves the admin endpoint on `listener` until `shutdown` resolves:
/// the executors' stats and `traffic`'s counters.
pub async fn serve(
  listener: TcpListener,
  dispatcher: Arc<Dispatcher>,
  traffic: Arc<Traffic>,
  shutdown: impl Future<Output = ()>,
) {
  tokio::pin!(shutdown);
  loop {
    let stream = tokio::select! {
      accepted = crate::server::accept_or_back_off(&listener, "admin") => match accepted {
        Some((stream, _)) => stream,
        None => continue,
      },
      () = &mut shutdown => return,
    };
    let (dispatcher, traffic) = (dispatcher.clone(), traffic.clone());
    tokio::spawn(async move {
      let service = service_fn(move |req| {
        let (dispatcher, traffic) = (dispatcher.clone(), traffic.clone());
        async move { Ok::<_, Infallible>(answer(dispatcher, traffic, req).await) }
      });
      let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
    });
  }
}
