//! The API's HTTP server: `run(listener, app, shutdown)`, callable from
//! tests on port 0.

use std::future::Future;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::app::ControlPlane;

/// Serves the API on `listener` until `shutdown` resolves, then lets the
/// connections finish what they are doing.
pub async fn run(
  listener: TcpListener,
  app: Arc<ControlPlane>,
  shutdown: impl Future<Output = ()>,
) {
  let graceful = GracefulShutdown::new();
  let builder = Builder::new(TokioExecutor::new());
  tokio::pin!(shutdown);
  loop {
    tokio::select! {
      accepted = listener.accept() => {
        let (stream, peer) = match accepted {
          Ok(accepted) => accepted,
          Err(err) => {
            tracing::warn!(%err, "accept failed");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
          }
        };
        let app = app.clone();
        let service = service_fn(move |request| {
          let app = app.clone();
          async move { Ok::<_, std::convert::Infallible>(crate::api::handle(app, request).await) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
          if let Err(err) = connection.await {
            tracing::debug!(%peer, %err, "API connection ended");
          }
        });
      }
      () = &mut shutdown => break,
    }
  }
  graceful.shutdown().await;
}
