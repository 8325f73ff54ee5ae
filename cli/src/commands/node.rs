//! What the serving commands (`dev`, `edge`) share: server options, the
//! executor threads, binding, and shutdown on a signal.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use outpost_edge::{Dispatcher, ServerConfig};

/// Options of every command that serves HTTP.
#[derive(Args)]
pub struct ServeArgs {
  /// Address to listen on.
  #[arg(long, default_value = "127.0.0.1")]
  pub ip: IpAddr,

  /// Executor threads running isolates (default: one per core).
  #[arg(long)]
  pub threads: Option<usize>,

  /// Largest request head in bytes; larger gets 431.
  #[arg(long, default_value_t = 64 * 1024)]
  pub max_header_bytes: usize,

  /// Largest request body in bytes; larger gets 413.
  #[arg(long, default_value_t = 100 * 1024 * 1024)]
  pub max_body_bytes: u64,

  /// Flags for V8, comma-separated (for example --v8-flags=--max-old-space-size=256).
  #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
  pub v8_flags: Vec<String>,
}

impl ServeArgs {
  /// Applies the V8 flags. Must run before the first isolate exists.
  pub fn apply_v8_flags(&self) -> anyhow::Result<()> {
    let unknown = outpost_runtime::set_v8_flags(&self.v8_flags);
    if !unknown.is_empty() {
      bail!("V8 does not know these flags: {}", unknown.join(" "));
    }
    Ok(())
  }

  /// Starts the executor threads.
  pub fn start_dispatcher(&self) -> anyhow::Result<Arc<Dispatcher>> {
    let threads = self
      .threads
      .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    Ok(Arc::new(
      Dispatcher::start(threads).context("starting executor threads")?,
    ))
  }

  /// The HTTP server's limits.
  pub fn server_config(&self) -> ServerConfig {
    ServerConfig {
      max_header_bytes: self.max_header_bytes,
      max_body_bytes: self.max_body_bytes,
      ..ServerConfig::default()
    }
  }

  /// Binds the listener on `port` (0 picks a free one).
  pub async fn bind(&self, port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::new(self.ip, port))
      .await
      .with_context(|| format!("binding {}:{port}", self.ip))
  }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
  let ctrl_c = tokio::signal::ctrl_c();
  #[cfg(unix)]
  {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
      Ok(term) => term,
      Err(err) => {
        tracing::warn!("cannot listen for SIGTERM: {err}");
        let _ = ctrl_c.await;
        return;
      }
    };
    tokio::select! {
      _ = ctrl_c => {}
      _ = term.recv() => {}
    }
  }
  #[cfg(not(unix))]
  let _ = ctrl_c.await;
}
