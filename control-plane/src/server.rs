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
      accepted = accept_or_back_off(&listener, "API") => {
        let Some((stream, peer)) = accepted else {
          continue;
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

/// Accepts a connection; on failure (out of file descriptors and the
/// like) logs, waits a little so the loop does not spin, and gives `None`.
pub(crate) async fn accept_or_back_off(
  listener: &tokio::net::TcpListener,
  what: &str,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
  match listener.accept().await {
    Ok(accepted) => Some(accepted),
    Err(err) => {
      tracing::warn!("{what} accept failed: {err}");
      tokio::time::sleep(std::time::Duration::from_millis(50)).await;
      None
    }
  }
}
