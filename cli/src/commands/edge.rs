//! `outpost edge`: an edge node serving many workers, from a local folder
//! or from the control plane.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use outpost_control::kv::StoreKv;
use outpost_edge::Routes;
use outpost_edge::control::{ControlledNode, NodeIdentity};
use outpost_edge::kv::EdgeKv;
use outpost_edge::local_folder::LocalFolder;
use outpost_edge::tail::TailHub;
use outpost_edge::tls::{CertFiles, SniResolver, follow_files, reload_logged};
use outpost_edge::traffic::Traffic;
use outpost_protocol::KvBackend;
use outpost_runtime::LogSink;

use super::kv::{local_state_dir, open_local_store};
use super::node::{ServeArgs, shutdown_signal};

/// Arguments of `outpost edge`.
#[derive(Args)]
pub struct EdgeArgs {
  /// Serve the workers in this folder: each subfolder <name>/ is one
  /// worker (entry worker.js or worker.ts, or `main` in its outpost.toml),
  /// reached with Host <name>.localhost or a path starting with /<name>/.
  /// The folder is watched for added, changed and removed workers.
  #[arg(
    long,
    value_name = "DIR",
    conflicts_with = "control",
    required_unless_present = "control"
  )]
  local: Option<PathBuf>,

  /// Serve what the control plane at this URL (its HTTP API) deploys.
  /// Needs --data, and --join the first time.
  #[arg(long, value_name = "URL", requires = "data")]
  control: Option<String>,

  /// A one-time edge-join token, to enrol this node on its first start.
  #[arg(
    long,
    value_name = "TOKEN",
    env = "OUTPOST_JOIN_TOKEN",
    hide_env_values = true
  )]
  join: Option<String>,

  /// Where a controlled node keeps its identity, bundles and routing
  /// table, so that it serves at once after a restart.
  #[arg(long, value_name = "DIR")]
  data: Option<PathBuf>,

  /// The name this node enrols under (default: the host name).
  #[arg(long)]
  name: Option<String>,

  /// Port to listen on (0 picks a free one).
  #[arg(long, default_value_t = 8080)]
  port: u16,

  /// Also serve HTTPS (h2 and HTTP/1.1 by ALPN) on this port, with the
  /// certificates of --tls-cert/--tls-key (and, under --control, those of
  /// `outpost certs add`) chosen by SNI.
  #[arg(long)]
  tls_port: Option<u16>,

  /// A PEM certificate chain; it serves the host names in its subject
  /// alternative names. Repeatable, each paired with the --tls-key in the
  /// same position. The files are reloaded when they change (or on SIGHUP).
  #[arg(long, value_name = "PEM", requires = "tls_port")]
  tls_cert: Vec<PathBuf>,

  /// The PEM private key of the --tls-cert in the same position.
  #[arg(long, value_name = "PEM", requires = "tls_port")]
  tls_key: Vec<PathBuf>,

  /// Do not serve HTTP/3 (QUIC on the --tls-port number, over UDP).
  #[arg(long, requires = "tls_port")]
  no_http3: bool,

  /// Do not start a worker's isolate while the TLS handshake that names
  /// its host runs (for measuring what that saves).
  #[arg(long, requires = "tls_port")]
  no_tls_prewarm: bool,

  /// Serve GET /metrics (Prometheus) on this port, apart from the workers.
  #[arg(long)]
  admin_port: Option<u16>,

  /// The KV cache's budget, in MiB (a controlled node's cache in front of
  /// the control plane).
  #[arg(long, default_value_t = 256, value_name = "MIB")]
  kv_cache_mb: u64,

  /// How long a KV call to the control plane may take before the worker
  /// gets an error, in milliseconds.
  #[arg(long, default_value_t = 5000, value_name = "MS")]
  kv_timeout_ms: u64,

  #[command(flatten)]
  serve: ServeArgs,
}

/// A task that keeps the routing table in step with its source until the
/// future it is given resolves.
type Follower =
  Box<dyn FnOnce(Pin<Box<dyn Future<Output = ()> + Send>>) -> tokio::task::JoinHandle<()>>;

/// The certificates of --tls-cert and --tls-key, paired by position.
fn tls_resolver(args: &EdgeArgs) -> anyhow::Result<Option<Arc<SniResolver>>> {
  if args.tls_port.is_none() {
    return Ok(None);
  }
  if args.tls_cert.is_empty() && args.control.is_some() {
    // Every certificate will come from the control plane.
    return Ok(Some(Arc::new(SniResolver::pushed_only())));
  }
  if args.tls_cert.is_empty() {
    bail!(
      "--tls-port needs --tls-cert and --tls-key (or --control, whose `outpost certs add` certificates it serves)"
    );
  }
  if args.tls_cert.len() != args.tls_key.len() {
    bail!(
      "{} --tls-cert but {} --tls-key: give each certificate its key, in the same order",
      args.tls_cert.len(),
      args.tls_key.len()
    );
  }
  let files = args
    .tls_cert
    .iter()
    .zip(&args.tls_key)
    .map(|(cert, key)| CertFiles {
      cert: cert.clone(),
      key: key.clone(),
    })
    .collect();
  Ok(Some(Arc::new(
    SniResolver::load(files).context("loading the TLS certificates")?,
  )))
}

/// Reloads the certificates on SIGHUP, until `stopped` resolves.
async fn reload_on_sighup(resolver: Arc<SniResolver>, stopped: impl Future<Output = ()>) {
  let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
  else {
    tracing::warn!("cannot listen for SIGHUP; certificates reload when their files change");
    return;
  };
  tokio::pin!(stopped);
  loop {
    tokio::select! {
      Some(()) = hangups.recv() => reload_logged(&resolver),
      () = &mut stopped => return,
    }
  }
}

/// Runs `outpost edge` until Ctrl-C or SIGTERM.
pub fn run(args: EdgeArgs) -> anyhow::Result<()> {
  let resolver = tls_resolver(&args)?;
  let runtime = args.serve.prepare()?;
  runtime.block_on(async move {
    // Tailing needs a control plane to stream to.
    let tail = args.control.is_some().then(|| Arc::new(TailHub::default()));
    let sink = tail.clone().map(|hub| hub as Arc<dyn LogSink>);
    let dispatcher = args.serve.start_dispatcher_logging(sink)?;
    let routes = Routes::default();
    let outbound = args.serve.outbound_policy()?;
    let traffic = Arc::new(Traffic::default());
    let (source, follow): (String, Follower) = match (&args.local, &args.control) {
      (Some(local), _) => {
        if !local.is_dir() {
          bail!("{} is not a folder", local.display());
        }
        let root = std::fs::canonicalize(local).with_context(|| format!("resolving {}", local.display()))?;
        // KV bindings of local workers share one store, in the folder's .outpost/state/.
        let kv: Arc<dyn KvBackend> = Arc::new(StoreKv::local(open_local_store(&local_state_dir(None, &root))?));
        let mut folder = LocalFolder::new(root.clone(), dispatcher.clone(), routes.clone())
          .with_outbound(outbound)
          .with_kv(kv);
        folder.load().await.with_context(|| format!("reading {}", root.display()))?;
        let source = format!("{} worker(s) from {}", folder.served().len(), root.display());
        let follow: Follower = Box::new(move |stopped| {
          tokio::spawn(async move {
            if let Err(err) = folder.watch(stopped).await {
              tracing::error!("watching the folder stopped: {err}");
            }
          })
        });
        (source, follow)
      }
      (None, Some(control)) => {
        let Some(data) = args.data.clone() else {
          bail!("--control needs --data <DIR>");
        };
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let identity = match NodeIdentity::load(&data)? {
          Some(identity) => identity,
          None => {
            let Some(join) = &args.join else {
              bail!("this node has not enrolled yet: pass --join <TOKEN> (an edge-join token from `outpost control token create --scope edge-join`)");
            };
            let name = args.name.clone().unwrap_or_else(default_node_name);
            let identity = NodeIdentity::enrol(control, join, &name, &data).await?;
            println!("outpost edge: enrolled as {} ({name})", identity.id);
            identity
          }
        };
        let kv = EdgeKv::new(args.kv_cache_mb << 20, Duration::from_millis(args.kv_timeout_ms));
        traffic.watch_kv(kv.clone());
        let mut node = ControlledNode::new(data.clone(), dispatcher.clone(), routes.clone(), outbound, kv);
        if let Some(resolver) = &resolver {
          node = node.with_tls(resolver.clone());
        }
        if let Some(tail) = &tail {
          node = node.with_tail(tail.clone());
          tokio::spawn(tail.clone().forward());
        }
        traffic.watch_sync(node.sync_status());
        let restored = node.restore().await.context("serving the saved state")?;
        let source = format!(
          "{restored} worker(s) from {} (epoch {}), following the control plane at {}",
          data.display(),
          node.epoch(),
          identity.sync_address
        );
        let follow: Follower = Box::new(move |stopped| tokio::spawn(node.follow(identity, stopped)));
        (source, follow)
      }
      (None, None) => bail!("pass --local <DIR> or --control <URL>"),
    };

    let listener = args.serve.bind(args.port).await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
      let _ = stop.changed().await;
    };
    let mut config = args.serve.server_config();
    config.traffic = traffic.clone();
    config.prewarm = !args.no_tls_prewarm;
    // Workers see the node's name as request.cf.colo.
    config.colo = args.name.clone().unwrap_or_else(default_node_name).into();
    let https = match (&resolver, args.tls_port) {
      (Some(resolver), Some(port)) => {
        let tls_listener = args.serve.bind(port).await?;
        let tls_addr = tls_listener.local_addr()?;
        // HTTP/3 on the same port number, over UDP.
        let http3 = if args.no_http3 {
          None
        } else {
          let socket = std::net::UdpSocket::bind(tls_addr)
            .with_context(|| format!("binding UDP {tls_addr} for HTTP/3"))?;
          let endpoint = outpost_edge::h3::bind(socket, resolver)?;
          config.alt_svc = Some(outpost_edge::h3::alt_svc(tls_addr.port()));
          Some(tokio::spawn(outpost_edge::h3::run(
            endpoint,
            routes.clone(),
            dispatcher.clone(),
            config.clone(),
            stopped(stop_rx.clone()),
          )))
        };
        let server = outpost_edge::run_tls(
          tls_listener,
          resolver.clone(),
          routes.clone(),
          dispatcher.clone(),
          config.clone(),
          stopped(stop_rx.clone()),
        );
        tokio::spawn(reload_on_sighup(resolver.clone(), stopped(stop_rx.clone())));
        let follow = follow_files(resolver.clone(), stopped(stop_rx.clone()));
        tokio::spawn(async move {
          if let Err(err) = follow.await {
            tracing::warn!("not watching the certificate files ({err}); reload with SIGHUP");
          }
        });
        Some((tokio::spawn(server), http3, tls_addr))
      }
      _ => None,
    };
    // Before the serving line, which scripts take as "ready".
    if let Some(port) = args.admin_port {
      let admin = args.serve.bind(port).await?;
      println!("outpost edge: metrics on http://{}/metrics", admin.local_addr()?);
      tokio::spawn(outpost_edge::metrics::serve(admin, dispatcher.clone(), traffic.clone(), stopped(stop_rx.clone())));
    }
    match &https {
      Some((_, Some(_), tls_addr)) => println!(
        "outpost edge: serving {source} at http://{addr}/ and https://{tls_addr}/ (HTTP/3 on UDP port {})",
        tls_addr.port()
      ),
      Some((_, None, tls_addr)) => println!("outpost edge: serving {source} at http://{addr}/ and https://{tls_addr}/"),
      None => println!("outpost edge: serving {source} at http://{addr}/"),
    }
    // Ctrl-C or SIGTERM stops every listener at once.
    {
      let stop_tx = stop_tx.clone();
      tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
      });
    }
    let following = follow(Box::pin(stopped(stop_rx.clone())));
    outpost_edge::run(listener, routes, dispatcher, config, stopped(stop_rx)).await;
    let _ = stop_tx.send(true);
    if let Some((server, http3, _)) = https {
      let _ = server.await;
      if let Some(http3) = http3 {
        let _ = http3.await;
      }
    }
    let _ = following.await;
    Ok(())
  })
}

/// The machine's host name, made a valid node name, or `edge`.
fn default_node_name() -> String {
  let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
  let name: String = host
    .trim()
    .to_ascii_lowercase()
    .chars()
    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
    .take(63)
    .collect();
  let name = name.trim_matches('-').to_owned();
  if name.is_empty() {
    "edge".to_owned()
  } else {
    name
  }
}
