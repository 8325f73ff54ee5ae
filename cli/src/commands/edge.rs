//! `outpost edge`: an edge node serving many workers.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use outpost_edge::Routes;
use outpost_edge::local_folder::LocalFolder;

use super::node::{ServeArgs, shutdown_signal};

/// Arguments of `outpost edge`.
#[derive(Args)]
pub struct EdgeArgs {
  /// Serve the workers in this folder: each subfolder <name>/ is one
  /// worker (entry worker.js or worker.ts, or `main` in its outpost.toml),
  /// reached with Host <name>.localhost or a path starting with /<name>/.
  /// The folder is watched for added, changed and removed workers.
  #[arg(long, value_name = "DIR")]
  local: PathBuf,

  /// Port to listen on (0 picks a free one).
  #[arg(long, default_value_t = 8080)]
  port: u16,

  /// Serve GET /metrics (Prometheus) on this port, apart from the workers.
  #[arg(long)]
  admin_port: Option<u16>,

  #[command(flatten)]
  serve: ServeArgs,
}

/// Runs `outpost edge` until Ctrl-C or SIGTERM.
pub fn run(args: EdgeArgs) -> anyhow::Result<()> {
  if !args.local.is_dir() {
    bail!("{} is not a folder", args.local.display());
  }
  let root = std::fs::canonicalize(&args.local)
    .with_context(|| format!("resolving {}", args.local.display()))?;
  let runtime = args.serve.prepare()?;
  runtime.block_on(async move {
    let dispatcher = args.serve.start_dispatcher()?;
    let routes = Routes::default();
    let mut folder = LocalFolder::new(root.clone(), dispatcher.clone(), routes.clone())
      .with_outbound(args.serve.outbound_policy()?);
    folder
      .load()
      .await
      .with_context(|| format!("reading {}", root.display()))?;

    let listener = args.serve.bind(args.port).await?;
    let addr = listener.local_addr()?;
    let served = folder.served();
    println!(
      "outpost edge: serving {} worker(s) from {} at http://{addr}/",
      served.len(),
      root.display()
    );

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    if let Some(port) = args.admin_port {
      let admin = args.serve.bind(port).await?;
      println!(
        "outpost edge: metrics at http://{}/metrics",
        admin.local_addr()?
      );
      let mut stop = stop_rx.clone();
      let stopped = async move {
        let _ = stop.changed().await;
      };
      tokio::spawn(outpost_edge::metrics::serve(
        admin,
        dispatcher.clone(),
        stopped,
      ));
    }
    let watch = tokio::spawn(async move {
      let stopped = async move {
        let _ = stop_rx.changed().await;
      };
      if let Err(err) = folder.watch(stopped).await {
        tracing::error!("watching the folder stopped: {err}");
      }
    });
    let config = args.serve.server_config();
    outpost_edge::run(listener, routes, dispatcher, config, shutdown_signal()).await;
    let _ = stop_tx.send(true);
    let _ = watch.await;
    Ok(())
  })
}
