//! What the serving commands (`dev`, `edge`) share: server options, the
//! executor threads, binding, and shutdown on a signal.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use outpost_edge::admission::ConnectionCaps;
use outpost_edge::{Dispatcher, ServerConfig};
use outpost_runtime::{ExecutorOptions, LogSink, OutboundPolicy, ResidencyPolicy, ResponseCache};

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

  /// Seconds a client may take to send a request head, and a connection
  /// may sit without a request, before it is closed.
  #[arg(long, default_value_t = 30)]
  pub header_read_timeout_secs: u64,

  /// Most client connections open at once (TCP and QUIC together); more
  /// are refused.
  #[arg(long, default_value_t = 16_384)]
  pub max_connections: usize,

  /// Most connections open at once from one client (an IPv4 address or an
  /// IPv6 /64); more are refused.
  #[arg(long, default_value_t = 1_024)]
  pub max_connections_per_ip: usize,

  /// Flags for V8, comma-separated (for example --v8-flags=--max-old-space-size=256).
  #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
  pub v8_flags: Vec<String>,

  /// Memory for resident isolates, in MiB; past it, idle isolates are
  /// evicted least-recently-used first (default: 75% of RAM).
  #[arg(long, value_name = "MIB")]
  pub memory_budget_mb: Option<u64>,

  /// Seconds an idle isolate is kept before it is evicted.
  #[arg(long, default_value_t = 900)]
  pub idle_timeout_secs: u64,

  /// Blank isolates each executor keeps pre-warmed (0 turns the pool off).
  #[arg(long, default_value_t = 4)]
  pub pool_size: usize,

  /// Memory for the Cache API's responses (`caches.default`, `caches.open`),
  /// shared by every worker on the node, in MiB.
  #[arg(long, value_name = "MIB", default_value_t = 64)]
  pub cache_mb: u64,

  /// Open a host name (api.internal, *.corp.example), address or range
  /// (10.0.0.0/8) to every worker's fetch(); by default only public
  /// addresses can be reached. Repeatable.
  #[arg(long = "allow-outbound", value_name = "HOST|ADDRESS|RANGE")]
  pub allow_outbound: Vec<String>,
}

/// What one resident isolate is reckoned to cost, to turn a memory budget
/// into a count of isolates: about 2.8 MiB of RSS was measured per small
/// resident worker (docs/benchmarks.md); heavier workers cost more.
const BYTES_PER_RESIDENT_ISOLATE: u64 = 4 << 20;

/// Environment variables through which deno_fetch's client sends workers'
/// requests to a proxy.
const PROXY_VARIABLES: [&str; 6] = [
  "HTTP_PROXY",
  "http_proxy",
  "HTTPS_PROXY",
  "https_proxy",
  "ALL_PROXY",
  "all_proxy",
];

/// A proxy resolves host names itself, so the outbound address policy then
/// checks only IP-literal URLs: say so loudly.
fn warn_of_proxies() {
  for name in PROXY_VARIABLES {
    if std::env::var_os(name).is_some_and(|v| !v.is_empty()) {
      tracing::warn!(
        "{name} is set: workers' fetch() will go through that proxy, which resolves host \
         names itself, so the outbound address policy can only check IP-literal URLs"
      );
    }
  }
}

/// The machine's RAM, from /proc/meminfo.
fn total_memory_bytes() -> Option<u64> {
  let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
  let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
  let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
  Some(kib * 1024)
}

impl ServeArgs {
  /// Applies the V8 flags (before any isolate exists) and builds the tokio
  /// runtime the node's HTTP side runs on.
  pub fn prepare(&self) -> anyhow::Result<tokio::runtime::Runtime> {
    let unknown = outpost_runtime::set_v8_flags(&self.v8_flags);
    if !unknown.is_empty() {
      bail!("V8 does not know these flags: {}", unknown.join(" "));
    }
    warn_of_proxies();
    Ok(
      tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?,
    )
  }

  /// Starts the executor threads.
  pub fn start_dispatcher(&self) -> anyhow::Result<Arc<Dispatcher>> {
    self.start_dispatcher_logging(None)
  }

  /// As [`ServeArgs::start_dispatcher`], with workers' console lines also
  /// going to `log_sink` (`outpost tail`).
  pub fn start_dispatcher_logging(
    &self,
    log_sink: Option<Arc<dyn LogSink>>,
  ) -> anyhow::Result<Arc<Dispatcher>> {
    let threads = self
      .threads
      .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
      .max(1);
    let budget = self
      .memory_budget_mb
      .map(|mib| mib << 20)
      .or_else(|| total_memory_bytes().map(|total| total / 4 * 3));
    let max_resident = budget.map_or(usize::MAX, |bytes| {
      let per_executor = bytes / BYTES_PER_RESIDENT_ISOLATE / threads as u64;
      usize::try_from(per_executor.max(1)).unwrap_or(usize::MAX)
    });
    let options = ExecutorOptions {
      pool_size: self.pool_size,
      residency: ResidencyPolicy {
        max_resident,
        idle_timeout: Duration::from_secs(self.idle_timeout_secs),
      },
      response_cache: ResponseCache::new(self.cache_mb << 20),
      log_sink,
    };
    let dispatcher =
      Dispatcher::start_with(threads, &options).context("starting executor threads")?;
    Ok(Arc::new(dispatcher))
  }

  /// What `--allow-outbound` opens.
  pub fn outbound_policy(&self) -> anyhow::Result<OutboundPolicy> {
    Ok(OutboundPolicy::parse(&self.allow_outbound)?)
  }

  /// The HTTP server's limits.
  pub fn server_config(&self) -> ServerConfig {
    ServerConfig {
      max_header_bytes: self.max_header_bytes,
      max_body_bytes: self.max_body_bytes,
      header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
      connection_caps: Arc::new(ConnectionCaps::new(
        self.max_connections,
        self.max_connections_per_ip,
      )),
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
