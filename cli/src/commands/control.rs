//! `outpost control`: the control plane, and its local admin commands.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use outpost_control::certs::Authority;
use outpost_control::kv::KvChange;
use outpost_control::scheduler::{self, CronClock};
use outpost_control::secrets::{self, SecretsKey};
use outpost_control::store::{
  Change, PostgresStore, Scope, SqliteStore, Store, listen_for_changes,
};
use outpost_control::{ControlPlane, app, metrics, server, sync_server, tokens};

use super::node::shutdown_signal;

/// The database file in the data folder.
const SQLITE_FILE: &str = "control.db";

/// Arguments of `outpost control`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ControlArgs {
  #[command(subcommand)]
  command: Option<ControlCommand>,

  #[command(flatten)]
  serve: ServeArgs,
}

#[derive(Subcommand)]
enum ControlCommand {
  /// Manage API tokens.
  Token {
    #[command(subcommand)]
    command: TokenCommand,
  },
}

#[derive(Subcommand)]
enum TokenCommand {
  /// Create a token and print it (only it) on stdout. Works while the
  /// control plane runs.
  Create(TokenCreateArgs),
}

#[derive(Args)]
struct TokenCreateArgs {
  #[command(flatten)]
  storage: StorageArgs,

  /// What the token may do: admin, deploy, kv-write, read-only or
  /// edge-join (enrols one edge node, once).
  #[arg(long, value_parser = parse_scope)]
  scope: Scope,

  /// A note on what the token is for.
  #[arg(long, default_value = "")]
  label: String,
}

/// Where the control plane keeps its state.
#[derive(Args)]
struct StorageArgs {
  /// The data folder, for the embedded SQLite database.
  #[arg(long, value_name = "DIR", required_unless_present = "database")]
  data: Option<PathBuf>,

  /// A PostgreSQL database instead (postgres://user:password@host/db),
  /// which several control planes can share.
  #[arg(
    long,
    value_name = "URL",
    env = "OUTPOST_DATABASE_URL",
    hide_env_values = true
  )]
  database: Option<String>,
}

impl StorageArgs {
  fn describe(&self) -> String {
    match (&self.database, &self.data) {
      (Some(_), _) => "PostgreSQL".to_owned(),
      (None, Some(data)) => data.display().to_string(),
      (None, None) => "nowhere".to_owned(),
    }
  }

  /// Opens the store; `must_exist` refuses to create a new SQLite file.
  async fn open(&self, must_exist: bool) -> anyhow::Result<Arc<dyn Store>> {
    Ok(self.open_replica(must_exist).await?.0)
  }

  /// Opens the store, and names this replica when it is PostgreSQL.
  async fn open_replica(
    &self,
    must_exist: bool,
  ) -> anyhow::Result<(Arc<dyn Store>, Option<String>)> {
    if let Some(url) = &self.database {
      let store = PostgresStore::connect(url).await?;
      let replica = store.replica_id();
      return Ok((Arc::new(store), Some(replica)));
    }
    let Some(data) = &self.data else {
      bail!("pass --data <DIR> (SQLite) or --database <URL> (PostgreSQL)");
    };
    if must_exist && !data.join(SQLITE_FILE).is_file() {
      bail!(
        "{} holds no control plane database; start `outpost control --data {}` first",
        data.display(),
        data.display()
      );
    }
    Ok((open_sqlite(data)?, None))
  }
}

#[derive(Args)]
struct ServeArgs {
  #[command(flatten)]
  storage: StorageArgs,

  /// Address of the HTTP API.
  #[arg(long, default_value = "127.0.0.1:8787")]
  listen: SocketAddr,

  /// UDP address of the QUIC sync endpoint edge nodes connect to.
  #[arg(long, default_value = "127.0.0.1:8788")]
  sync_listen: SocketAddr,

  /// The sync address edges are told to connect to at enrolment, when it
  /// differs from --sync-listen (a public name or address, say).
  #[arg(long, value_name = "HOST:PORT")]
  sync_advertise: Option<String>,

  /// Serve GET /metrics (Prometheus, no token) on this address, apart
  /// from the API.
  #[arg(long, value_name = "ADDR")]
  admin_listen: Option<SocketAddr>,

  /// Take cron time from this file (milliseconds since the Unix epoch)
  /// instead of the system clock: for tests that move time.
  #[arg(long, value_name = "FILE", hide = true)]
  cron_clock_file: Option<PathBuf>,
}

fn parse_scope(name: &str) -> Result<Scope, String> {
  Scope::parse(name).ok_or_else(|| {
    let names: Vec<_> = Scope::ALL.iter().map(|s| s.name()).collect();
    format!("one of {}", names.join(", "))
  })
}

/// Runs `outpost control` (until Ctrl-C or SIGTERM) or one of its commands.
pub fn run(args: ControlArgs) -> anyhow::Result<()> {
  let runtime = tokio::runtime::Runtime::new().context("starting Tokio")?;
  match args.command {
    Some(ControlCommand::Token {
      command: TokenCommand::Create(create),
    }) => runtime.block_on(create_token(create)),
    None => runtime.block_on(serve(args.serve)),
  }
}

fn open_sqlite(data: &Path) -> anyhow::Result<Arc<dyn Store>> {
  std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
  let path = data.join(SQLITE_FILE);
  let store = SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))?;
  Ok(Arc::new(store))
}

async fn create_token(args: TokenCreateArgs) -> anyhow::Result<()> {
  let store = args.storage.open(true).await?;
  let token = tokens::generate()?;
  store
    .create_token(tokens::hash(&token), args.scope, args.label)
    .await?;
  println!("{token}");
  Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
  let (store, replica) = args.storage.open_replica(false).await?;
  if let Some(token) = app::bootstrap_admin_token(&*store).await? {
    println!("outpost control: first start; the admin token, shown only this once:");
    println!("{token}");
  }
  // Private keys (the CA's, certificates') are sealed with a key kept
  // outside the database.
  let secrets_key = match (SecretsKey::from_env()?, &args.storage.data) {
    (Some(key), _) => Some(key),
    (None, Some(data)) if args.storage.database.is_none() => {
      Some(SecretsKey::load_or_create(data)?)
    }
    (None, _) => {
      tracing::warn!(
        "{} is not set: certificates cannot be added or sent to edges",
        secrets::KEY_ENV
      );
      None
    }
  };
  let authority = Authority::load_or_create(&*store, secrets_key.as_ref()).await?;
  let endpoint = sync_server::bind(&authority, args.sync_listen)
    .with_context(|| format!("opening the sync endpoint on {}", args.sync_listen))?;
  let sync_address = match args.sync_advertise {
    Some(address) => address,
    None => endpoint.local_addr()?.to_string(),
  };
  let control = ControlPlane::new(store, authority, sync_address.clone()).await?;
  if let Some(key) = secrets_key {
    control.set_secrets_key(key);
  }
  if let Some(file) = args.cron_clock_file {
    control.set_cron_clock(CronClock::File(file));
  }
  // Replicas on one PostgreSQL database hear of each other's changes.
  let listener_task = args.storage.database.clone().map(|url| {
    let control = control.clone();
    tokio::spawn(listen_for_changes(
      url,
      replica,
      move |change| match change {
        Change::Epoch(epoch) => control.changed(epoch),
        Change::Kv { namespace, keys } => control.kv_changed(KvChange {
          namespace,
          keys,
          origin: None,
        }),
      },
    ))
  });
  let listener = tokio::net::TcpListener::bind(args.listen)
    .await
    .with_context(|| format!("listening on {}", args.listen))?;
  let (stop, stopped) = tokio::sync::watch::channel(false);
  // Before the API line, which scripts take as "ready".
  if let Some(address) = args.admin_listen {
    let admin = tokio::net::TcpListener::bind(address)
      .await
      .with_context(|| format!("listening on {address}"))?;
    println!(
      "outpost control: metrics on http://{}/metrics",
      admin.local_addr()?
    );
    let mut stopped = stopped.clone();
    tokio::spawn(metrics::serve(admin, control.clone(), async move {
      let _ = stopped.changed().await;
    }));
  }
  println!(
    "outpost control: API at http://{}/v1 sync at {sync_address} data in {}",
    listener.local_addr()?,
    args.storage.describe()
  );
  let mut scheduler_stopped = stopped.clone();
  let scheduler = tokio::spawn(scheduler::run(
    control.clone(),
    tokens::random_text(8)?,
    async move {
      let _ = scheduler_stopped.changed().await;
    },
  ));
  let sync = tokio::spawn(sync_server::run(endpoint, control.clone(), async move {
    let mut stopped = stopped;
    let _ = stopped.changed().await;
  }));
  server::run(listener, control, shutdown_signal()).await;
  let _ = stop.send(true);
  let _ = sync.await;
  let _ = scheduler.await;
  if let Some(task) = listener_task {
    task.abort();
  }
  Ok(())
}
