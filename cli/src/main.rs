//! The `outpost` command.

mod commands;

use clap::{Parser, Subcommand};

/// Outpost: a self-hostable edge platform for JavaScript and TypeScript
/// workers written in the Cloudflare Workers module syntax.
#[derive(Parser)]
#[command(name = "outpost", version, about, long_about = None)]
struct Cli {
  #[command(subcommand)]
  command: Command,

  /// Log filter, in tracing's EnvFilter syntax (or set RUST_LOG).
  #[arg(long, global = true, env = "RUST_LOG", default_value = "info")]
  log: String,
}

#[derive(Subcommand)]
enum Command {
  /// Serve a worker locally, reloading it when its files change.
  Dev(commands::dev::DevArgs),
}

fn main() -> anyhow::Result<()> {
  let cli = Cli::parse();
  tracing_subscriber::fmt()
    .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log)?)
    .with_writer(std::io::stderr)
    .init();
  match cli.command {
    Command::Dev(args) => commands::dev::run(args),
  }
}
