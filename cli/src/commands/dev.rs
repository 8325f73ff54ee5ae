//! `outpost dev`: serve one worker from local files with hot reload.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use outpost_edge::local::LocalWorker;
use outpost_edge::{Dispatcher, Routes, ServerConfig};
use outpost_runtime::WorkerEnv;

/// Arguments of `outpost dev`.
#[derive(Args)]
pub struct DevArgs {
  /// The worker's entry module (.js, .mjs or .ts).
  entry: PathBuf,

  /// Port to listen on (0 picks a free one).
  #[arg(long, default_value_t = 8787)]
  port: u16,

  /// Address to listen on.
  #[arg(long, default_value = "127.0.0.1")]
  ip: IpAddr,

  /// A plain var for `env`, as KEY=VALUE. Repeatable.
  #[arg(long = "var", value_name = "KEY=VALUE")]
  vars: Vec<String>,

  /// Executor threads running isolates (default: one per core).
  #[arg(long)]
  threads: Option<usize>,

  /// Largest request head in bytes; larger gets 431.
  #[arg(long, default_value_t = 64 * 1024)]
  max_header_bytes: usize,

  /// Largest request body in bytes; larger gets 413.
  #[arg(long, default_value_t = 100 * 1024 * 1024)]
  max_body_bytes: u64,

  /// Do not reload when files change.
  #[arg(long)]
  no_watch: bool,

  /// Flags for V8, comma-separated (for example --v8-flags=--max-old-space-size=256).
  #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
  v8_flags: Vec<String>,
}

fn parse_vars(vars: &[String]) -> anyhow::Result<WorkerEnv> {
  let mut env = WorkerEnv::default();
  for var in vars {
    let Some((key, value)) = var.split_once('=') else {
      bail!("--var {var:?} is not KEY=VALUE");
    };
    if key.is_empty() {
      bail!("--var {var:?} has an empty name");
    }
    env.vars.insert(key.to_owned(), value.to_owned());
  }
  Ok(env)
}

/// Runs `outpost dev` until Ctrl-C or SIGTERM.
pub fn run(args: DevArgs) -> anyhow::Result<()> {
  let env = parse_vars(&args.vars)?;
  let unknown = outpost_runtime::set_v8_flags(&args.v8_flags);
  if !unknown.is_empty() {
    bail!("V8 does not know these flags: {}", unknown.join(" "));
  }
  if !args.entry.is_file() {
    bail!("{} is not a file", args.entry.display());
  }
  let threads = args
    .threads
    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
  let runtime = tokio::runtime::Builder::new_multi_thread()
    .enable_all()
    .build()?;
  runtime.block_on(async move {
    let dispatcher = Arc::new(Dispatcher::start(threads).context("starting executor threads")?);
    let name = args
      .entry
      .file_stem()
      .and_then(|s| s.to_str())
      .unwrap_or("worker")
      .to_owned();
    let worker = LocalWorker {
      name: name.clone(),
      entry: args.entry.clone(),
      env: Arc::new(env),
      executor: dispatcher.executor_for(&name).clone(),
    };
    let dirs = worker
      .load()
      .await
      .with_context(|| format!("loading {}", args.entry.display()))?;

    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.ip, args.port))
      .await
      .with_context(|| format!("binding {}:{}", args.ip, args.port))?;
    let addr = listener.local_addr()?;
    println!(
      "outpost dev: serving {} at http://{addr}/",
      args.entry.display()
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let watch = (!args.no_watch).then(|| {
      let mut stop = stop_rx.clone();
      tokio::spawn(async move {
        if let Err(err) = worker
          .watch(dirs, async move {
            let _ = stop.changed().await;
          })
          .await
        {
          tracing::error!("hot reload stopped: {err}");
        }
      })
    });
    let config = ServerConfig {
      max_header_bytes: args.max_header_bytes,
      max_body_bytes: args.max_body_bytes,
      ..ServerConfig::default()
    };
    outpost_edge::run(
      listener,
      Routes::Single(name),
      dispatcher,
      config,
      shutdown_signal(),
    )
    .await;
    let _ = stop_tx.send(true);
    if let Some(watch) = watch {
      let _ = watch.await;
    }
    Ok(())
  })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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
