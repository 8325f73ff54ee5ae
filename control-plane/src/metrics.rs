//! The control plane's admin endpoint: `GET /metrics` in the Prometheus
//! text format, on its own listener (`outpost control --admin-listen`),
//! apart from the API and without a token.

use std::convert::Infallible;
use std::fmt::Write;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;

use crate::app::ControlPlane;

/// The metrics: the epoch, connected edges, cron firings, and each
/// enrolled edge's lag.
pub async fn render(app: &ControlPlane) -> String {
  let mut out = String::new();
  let epoch = app.epoch();
  for (name, help, value) in [
    (
      "outpost_control_epoch",
      "The newest epoch this control plane knows of.",
      epoch,
    ),
    (
      "outpost_connected_edges",
      "Edge nodes holding a sync connection to this control plane.",
      app.connected_edges() as u64,
    ),
  ] {
    let _ = writeln!(
      out,
      "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
  }
  let counts = &app.firings().counts;
  let load =
    |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
  let name = "outpost_cron_firings_total";
  let _ = writeln!(
    out,
    "# HELP {name} Cron firings recorded by this control plane, by outcome.\n# TYPE {name} counter\n{name}{{outcome=\"ok\"}} {}\n{name}{{outcome=\"exception\"}} {}",
    load(&counts.ok),
    load(&counts.failed)
  );
  for (name, help, value) in [
    (
      "outpost_cron_firing_duration_ms_total",
      "Milliseconds the recorded cron firings ran, summed.",
      load(&counts.duration_ms),
    ),
    (
      "outpost_cron_firing_delay_ms_total",
      "Milliseconds from the recorded cron firings' scheduled times to their starts, summed.",
      load(&counts.delay_ms),
    ),
  ] {
    let _ = writeln!(
      out,
      "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
  }
  match app.store().edges().await {
    Ok(edges) => {
      let name = "outpost_edge_sync_lag_epochs";
      let _ = writeln!(
        out,
        "# HELP {name} Epochs an enrolled edge has yet to acknowledge.\n# TYPE {name} gauge"
      );
      for edge in edges {
        let _ = writeln!(
          out,
          "{name}{{edge=\"{}\",name=\"{}\"}} {}",
          edge.id,
          edge.name,
          epoch.saturating_sub(edge.epoch)
        );
      }
    }
    Err(err) => tracing::warn!("metrics: the store failed: {err}"),
  }
  out
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
  listener: TcpListener,
  app: Arc<ControlPlane>,
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
    let app = app.clone();
    tokio::spawn(async move {
      let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let app = app.clone();
        async move {
          let mut response = if request.uri().path() == "/metrics" {
            let mut response = http::Response::new(Full::new(Bytes::from(render(&app).await)));
            response.headers_mut().insert(
              http::header::CONTENT_TYPE,
              http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
          } else {
            http::Response::new(Full::new(Bytes::from_static(b"Try /metrics.\n")))
          };
          if request.uri().path() != "/metrics" {
            *response.status_mut() = http::StatusCode::NOT_FOUND;
          }
          Ok::<_, Infallible>(response)
        }
      });
      let _ = Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
    });
  }
}
