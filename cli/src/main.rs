//! The `outpost` command.

mod commands;
mod logging;

use clap::{Parser, Subcommand};

/// jemalloc for Rust and, through its unprefixed `malloc`, for V8 as well.
/// With glibc's allocator a node serving 1,000 workers grew by about 1 GiB
/// of freed-but-kept arena memory under load (V8's compiler zones, freed on
/// other threads); jemalloc returns it, and its malloc is also cheaper on
/// the request path (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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

  /// Log lines as text for people, or as JSON objects (one per line) for
  /// collectors.
  #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Text)]
  log_format: logging::LogFormat,

  /// Export request spans as traces to this OTLP/HTTP collector (its base
  /// URL, e.g. http://collector:4318); off when not given.
  #[arg(long, global = true, env = "OUTPOST_OTLP_ENDPOINT", value_name = "URL")]
  otlp_endpoint: Option<String>,
}

#[derive(Subcommand)]
enum Command {
  /// Serve a worker locally, reloading it when its files change.
  Dev(commands::dev::DevArgs),
  /// Run an edge node serving many workers.
  Edge(commands::edge::EdgeArgs),
  /// Run the control plane, or manage its tokens.
  Control(commands::control::ControlArgs),
  /// Save the control plane's URL and a token for the commands below.
  Login(commands::deploy::LoginArgs),
  /// Upload a worker, make it the active version and wait for every edge.
  Deploy(commands::deploy::DeployArgs),
  /// Stop serving a worker everywhere (its versions are kept).
  Delete(commands::deploy::WorkerArgs),
  /// Create, list, show and delete dispatch namespaces: sets of user workers
  /// a dispatcher worker reaches, never routed publicly.
  DispatchNamespace(commands::dispatch::DispatchArgs),
  /// List a worker's versions and the share each serves; deploy one, or a
  /// split of two (`versions deploy v8@10% v7@90%`).
  Versions(commands::versions::VersionsArgs),
  /// Redeploy what served before the active deployment.
  Rollback(commands::deploy::WorkerArgs),
  /// List, add and remove routes.
  Routes(commands::deploy::RoutesArgs),
  /// List and remove edge nodes.
  Edges(commands::deploy::EdgesArgs),
  /// Manage KV namespaces and keys, on the control plane or locally.
  Kv(commands::kv::KvArgs),
  /// Add, list and remove the TLS certificates every edge serves.
  Certs(commands::certs::CertsArgs),
  /// Follow a worker's console output, exceptions and requests, live, on
  /// every edge.
  Tail(commands::tail::TailArgs),
  /// Set, list and remove a deployed worker's secrets (values never echoed).
  Secret(commands::secret::SecretArgs),
  /// Make a new Workers project from a template (hello, hono, scheduled).
  Init(commands::init::InitArgs),
  /// Show the control plane the CLI talks to, and its token's scope.
  Whoami(commands::deploy::WhoamiArgs),
  /// List a deployed worker's cron triggers and when each fires next.
  Triggers(commands::triggers::TriggersArgs),
}

fn main() -> std::process::ExitCode {
  let cli = Cli::parse();
  let traces = match logging::init(&cli.log, cli.log_format, cli.otlp_endpoint.as_deref()) {
    Ok(traces) => traces,
    Err(err) => {
      eprintln!("error: {err:#}");
      return std::process::ExitCode::from(2);
    }
  };
  let result = match cli.command {
    Command::Dev(args) => commands::dev::run(args),
    Command::Edge(args) => commands::edge::run(args),
    Command::Control(args) => commands::control::run(args),
    Command::Login(args) => commands::deploy::login(args),
    Command::Deploy(args) => commands::deploy::deploy(args),
    Command::Delete(args) => commands::deploy::delete(args),
    Command::DispatchNamespace(args) => commands::dispatch::run(args),
    Command::Versions(args) => commands::versions::run(args),
    Command::Rollback(args) => commands::deploy::rollback(args),
    Command::Routes(args) => commands::deploy::routes(args),
    Command::Edges(args) => commands::deploy::edges(args),
    Command::Kv(args) => commands::kv::run(args),
    Command::Tail(args) => commands::tail::run(args),
    Command::Secret(args) => commands::secret::run(args),
    Command::Init(args) => commands::init::run(args),
    Command::Whoami(args) => commands::deploy::whoami(args),
    Command::Triggers(args) => commands::triggers::run(args),
    Command::Certs(args) => commands::certs::run(args),
  };
  traces.shutdown();
  match result {
    Ok(()) => std::process::ExitCode::SUCCESS,
    Err(err) => {
      // `{:#}` prints the cause chain on one line, without a backtrace.
      eprintln!("error: {err:#}");
      std::process::ExitCode::FAILURE
    }
  }
}
