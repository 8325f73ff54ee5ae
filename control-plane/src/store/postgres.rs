//! [`Store`] on PostgreSQL, for several control-plane replicas sharing one
//! database. Writes take a transaction-scoped advisory lock, so replicas
//! write one at a time and epochs commit in order; each change also sends
//! `NOTIFY outpost_changes` with its epoch, and each KV write
//! `NOTIFY outpost_kv` with its keys, which [`listen_for_changes`] turns
//! into the change feed of every replica.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use outpost_protocol::RoutePattern;
use outpost_protocol::sync::{DeployedVersion, Route, State, WorkerDeployment};
use tokio::sync::Mutex;
use tokio_postgres::{AsyncMessage, Client, NoTls, Row, Transaction};

use super::{
  Deployment, EdgeInfo, Scope, Share, Store, StoreError, StoreResult, TokenRecord, Uploaded,
  VersionInfo, check_shares, now,
};

/// The channel changes are announced on.
const CHANGES_CHANNEL: &str = "outpost_changes";
/// The channel KV writes are announced on, as a [`KvNote`].
const KV_CHANNEL: &str = "outpost_kv";
/// NOTIFY payloads must stay under 8000 bytes; a note with more keys names
/// the whole namespace instead.
const MAX_NOTE_BYTES: usize = 7000;

/// A KV write, announced to the other replicas.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct KvNote {
  /// The store (replica) that wrote.
  replica: String,
  namespace: String,
  keys: Option<Vec<String>>,
}

/// Announces, on commit, that `keys` of `namespace` changed.
pub(super) async fn announce_kv(
  tx: &Transaction<'_>,
  replica: &str,
  namespace: &str,
  keys: Option<Vec<String>>,
) -> StoreResult<()> {
  let mut note = KvNote {
    replica: replica.to_owned(),
    namespace: namespace.to_owned(),
    keys,
  };
  let mut payload = serde_json::to_string(&note).unwrap_or_default();
  if payload.len() > MAX_NOTE_BYTES {
    note.keys = None;
    payload = serde_json::to_string(&note).unwrap_or_default();
  }
  tx.execute("SELECT pg_notify($1, $2)", &[&KV_CHANNEL, &payload])
    .await?;
  Ok(())
}
/// The advisory lock every write transaction holds ("outpost" in ASCII).
pub(super) const WRITE_LOCK: i64 = 0x006f_7574_706f_7374;

/// Schema migrations, applied in order; a database records how many it has.
const MIGRATIONS: &[&str] = &[
  r#"
  CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE tokens (
    id BIGSERIAL PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL
  );
  CREATE TABLE bundles (hash TEXT PRIMARY KEY, bytes BYTEA NOT NULL, size BIGINT NOT NULL);
  CREATE TABLE versions (
    worker TEXT NOT NULL,
    number BIGINT NOT NULL,
    hash TEXT NOT NULL REFERENCES bundles (hash),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (worker, number),
    UNIQUE (worker, hash)
  );
  CREATE TABLE changes (
    epoch BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    created_at BIGINT NOT NULL
  );
  CREATE TABLE deployments (
    id BIGSERIAL PRIMARY KEY,
    worker TEXT NOT NULL,
    shares TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    restores BIGINT
  );
  CREATE INDEX deployments_by_worker ON deployments (worker, id);
  CREATE TABLE routes (pattern TEXT PRIMARY KEY, worker TEXT NOT NULL);
  CREATE TABLE edges (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    enrolled_at BIGINT NOT NULL,
    last_seen BIGINT,
    epoch BIGINT NOT NULL DEFAULT 0
  );
"#,
  r#"
  CREATE TABLE kv_namespaces (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
  );
  CREATE TABLE kv_entries (
    namespace TEXT NOT NULL REFERENCES kv_namespaces (id) ON DELETE CASCADE,
    key TEXT COLLATE "C" NOT NULL,
    value BYTEA NOT NULL,
    metadata TEXT,
    expiration BIGINT,
    PRIMARY KEY (namespace, key)
  );
"#,
  r#"
  CREATE TABLE certificates (
    host TEXT PRIMARY KEY,
    cert_pem TEXT NOT NULL,
    key_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
  );
"#,
  // Secrets: sealed per version; a version's bundle may recur with other
  // secrets.
  r#"
  ALTER TABLE versions DROP CONSTRAINT IF EXISTS versions_worker_hash_key;
  ALTER TABLE versions ADD COLUMN secrets TEXT;
"#,
  // Cron firings: the primary key makes each claimable once.
  super::crons::CRON_FIRINGS_TABLE,
  // Static assets' bytes, once per content hash.
  r#"
  CREATE TABLE assets (hash TEXT PRIMARY KEY, bytes BYTEA NOT NULL, size BIGINT NOT NULL);
"#,
  // Dispatch namespaces; their user workers are workers named
  // `<namespace>/<name>`.
  super::dispatch::DISPATCH_NAMESPACES_TABLE,
];

impl From<tokio_postgres::Error> for StoreError {
  fn from(err: tokio_postgres::Error) -> Self {
    StoreError::Database(err.to_string())
  }
}

/// The PostgreSQL store: one connection, one transaction at a time.
#[derive(Clone)]
pub struct PostgresStore {
  pub(super) client: Arc<Mutex<Client>>,
  /// Names this store (this replica) in its KV notes.
  pub(super) replica: Arc<str>,
}

async fn connect(
  url: &str,
) -> StoreResult<(
  Client,
  tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
)> {
  tokio_postgres::connect(url, NoTls)
    .await
    .map_err(|err| StoreError::Database(format!("cannot connect to PostgreSQL: {err}")))
}

impl PostgresStore {
  /// Connects to the database at `url` (`postgres://user:password@host/db`)
  /// and brings its schema up to date.
  pub async fn connect(url: &str) -> StoreResult<Self> {
    let (mut client, connection) = connect(url).await?;
    tokio::spawn(async move {
      if let Err(err) = connection.await {
        tracing::error!("PostgreSQL connection failed: {err}");
      }
    });
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
      .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT NOT NULL)")
      .await?;
    let applied: i64 = tx
      .query_one("SELECT count(*) FROM schema_migrations", &[])
      .await?
      .get(0);
    let applied = usize::try_from(applied).unwrap_or(0);
    if applied > MIGRATIONS.len() {
      return Err(StoreError::Database(format!(
        "the database has schema version {applied}, newer than this binary's {}",
        MIGRATIONS.len()
      )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
      tx.batch_execute(migration).await?;
      tx.execute(
        "INSERT INTO schema_migrations (version) VALUES ($1)",
        &[&(index as i64 + 1)],
      )
      .await?;
    }
    tx.commit().await?;
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(|e| StoreError::Database(format!("no randomness: {e}")))?;
    Ok(Self {
      client: Arc::new(Mutex::new(client)),
      replica: outpost_protocol::bundle::hex(&id).into(),
    })
  }

  /// This replica's name in KV notes, for [`listen_for_changes`] to skip
  /// its own.
  pub fn replica_id(&self) -> String {
    self.replica.to_string()
  }
}

/// What another replica announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
  /// The store reached this epoch.
  Epoch(u64),
  /// KV keys changed (every key of the namespace for `None`).
  Kv {
    /// The namespace id.
    namespace: String,
    /// The keys.
    keys: Option<Vec<String>>,
  },
}

/// Follows `NOTIFY outpost_changes` and `outpost_kv` on its own connection
/// to `url`, calling `changed` with each change announced (except KV
/// changes made through `own`, the listening replica's store, which has
/// told its edges already), and reconnecting (every few seconds) if the
/// connection drops. Runs until the task is dropped.
pub async fn listen_for_changes(
  url: String,
  own: Option<String>,
  changed: impl Fn(Change) + Send + 'static,
) {
  loop {
    match connect(&url).await {
      Ok((client, mut connection)) => {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
          let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
          while let Some(message) = futures::StreamExt::next(&mut messages).await {
            match message {
              Ok(AsyncMessage::Notification(note)) => {
                let channel = note.channel().to_owned();
                if tx.send((channel, note.payload().to_owned())).is_err() {
                  break;
                }
              }
              Ok(_) => {}
              Err(err) => {
                tracing::warn!("PostgreSQL change feed failed: {err}");
                break;
              }
            }
          }
        });
        match client
          .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}; LISTEN {KV_CHANNEL}"))
          .await
        {
          Ok(()) => {
            while let Some((channel, payload)) = rx.recv().await {
              if channel == KV_CHANNEL {
                match serde_json::from_str::<KvNote>(&payload) {
                  Ok(note) if Some(&note.replica) != own.as_ref() => changed(Change::Kv {
                    namespace: note.namespace,
                    keys: note.keys,
                  }),
                  Ok(_) => {}
                  Err(err) => tracing::warn!("malformed {KV_CHANNEL} note: {err}"),
                }
              } else if let Ok(epoch) = payload.parse() {
                changed(Change::Epoch(epoch));
              }
            }
          }
          Err(err) => tracing::warn!("LISTEN failed: {err}"),
        }
        driver.abort();
      }
      Err(err) => tracing::warn!("PostgreSQL change feed: {err}"),
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
  }
}

/// Records a change, announces it on commit, and returns its epoch.
pub(super) async fn record_change(
  tx: &Transaction<'_>,
  kind: &str,
  subject: &str,
) -> StoreResult<u64> {
  let row = tx
    .query_one(
      "INSERT INTO changes (kind, subject, created_at) VALUES ($1, $2, $3) RETURNING epoch",
      &[&kind, &subject, &now()],
    )
    .await?;
  let epoch: i64 = row.get(0);
  tx.execute(
    "SELECT pg_notify($1, $2)",
    &[&CHANGES_CHANNEL, &epoch.to_string()],
  )
  .await?;
  Ok(epoch as u64)
}

pub(super) const VERSION_COLUMNS: &str = "SELECT v.worker, v.number, v.hash, b.size, v.created_at FROM versions v JOIN bundles b ON b.hash = v.hash";
const DEPLOYMENT_COLUMNS: &str =
  "SELECT id, worker, shares, epoch, created_at, restores FROM deployments";

pub(super) fn version_info(row: &Row) -> VersionInfo {
  VersionInfo {
    worker: row.get(0),
    number: row.get::<_, i64>(1) as u64,
    hash: row.get(2),
    size: row.get::<_, i64>(3) as u64,
    created_at: row.get(4),
  }
}

fn deployment(row: &Row) -> StoreResult<Deployment> {
  let id: i64 = row.get(0);
  let shares: String = row.get(2);
  Ok(Deployment {
    id,
    worker: row.get(1),
    shares: serde_json::from_str(&shares)
      .map_err(|err| StoreError::Database(format!("deployment {id}: {err}")))?,
    epoch: row.get::<_, i64>(3) as u64,
    created_at: row.get(4),
    restores: row.get(5),
  })
}

/// Adds `worker`'s next version: bundle `hash` with `secrets` (sealed).
/// Returns its number and creation time.
pub(super) async fn insert_version(
  tx: &Transaction<'_>,
  worker: &str,
  hash: &str,
  secrets: Option<&str>,
) -> StoreResult<(i64, i64)> {
  let number: i64 = tx
    .query_one(
      "SELECT coalesce(max(number), 0) + 1 FROM versions WHERE worker = $1",
      &[&worker],
    )
    .await?
    .get(0);
  let created_at = now();
  tx.execute(
    "INSERT INTO versions (worker, number, hash, created_at, secrets) VALUES ($1, $2, $3, $4, $5)",
    &[&worker, &number, &hash, &created_at, &secrets],
  )
  .await?;
  Ok((number, created_at))
}

pub(super) async fn latest_deployment(
  tx: &Transaction<'_>,
  worker: &str,
  before: i64,
) -> StoreResult<Option<Deployment>> {
  tx.query_opt(
    &format!("{DEPLOYMENT_COLUMNS} WHERE worker = $1 AND id < $2 ORDER BY id DESC LIMIT 1"),
    &[&worker, &before],
  )
  .await?
  .as_ref()
  .map(deployment)
  .transpose()
}

pub(super) async fn insert_deployment(
  tx: &Transaction<'_>,
  worker: &str,
  shares: Vec<Share>,
  restores: Option<i64>,
) -> StoreResult<Deployment> {
  // No shares records a removal.
  if !shares.is_empty() {
    check_shares(&shares)?;
  }
  for share in &shares {
    let known = tx
      .query_opt(
        "SELECT 1 FROM versions WHERE worker = $1 AND number = $2",
        &[&worker, &(share.version as i64)],
      )
      .await?;
    if known.is_none() {
      return Err(StoreError::NotFound(format!(
        "worker {worker:?} has no version {}",
        share.version
      )));
    }
  }
  let epoch = record_change(tx, "deployment", worker).await?;
  let created_at = now();
  let encoded = serde_json::to_string(&shares).map_err(|e| StoreError::Database(e.to_string()))?;
  let row = tx
    .query_one(
      "INSERT INTO deployments (worker, shares, epoch, created_at, restores) VALUES ($1, $2, $3, $4, $5) RETURNING id",
      &[&worker, &encoded, &(epoch as i64), &created_at, &restores],
    )
    .await?;
  Ok(Deployment {
    id: row.get(0),
    worker: worker.to_owned(),
    shares,
    epoch,
    created_at,
    restores,
  })
}

/// Runs `$body` in a transaction on `$self`'s connection (holding the write
/// lock if `$write`), committing if it returns Ok.
macro_rules! transaction {
  ($self:ident, $write:expr, |$tx:ident| $body:expr) => {{
    let client = $self.client.clone();
    Box::pin(async move {
      let mut client = client.lock().await;
      let $tx = client.transaction().await?;
      if $write {
        $tx
          .execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&$crate::store::postgres::WRITE_LOCK],
          )
          .await?;
      }
      let value = $body;
      $tx.commit().await?;
      Ok(value)
    })
  }};
}

pub(super) use transaction;

impl Store for PostgresStore {
  fn create_token(
    &self,
    hash: String,
    scope: Scope,
    label: String,
  ) -> BoxFuture<'_, StoreResult<TokenRecord>> {
    transaction!(self, true, |tx| {
      let row = tx
        .query_one(
          "INSERT INTO tokens (hash, scope, label, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
          &[&hash, &scope.name(), &label, &now()],
        )
        .await?;
      TokenRecord {
        id: row.get(0),
        scope,
        label,
      }
    })
  }

  fn find_token(&self, hash: String) -> BoxFuture<'_, StoreResult<Option<TokenRecord>>> {
    transaction!(self, false, |tx| {
      match tx
        .query_opt(
          "SELECT id, scope, label FROM tokens WHERE hash = $1",
          &[&hash],
        )
        .await?
      {
        Some(row) => {
          let id: i64 = row.get(0);
          let scope: String = row.get(1);
          let scope = Scope::parse(&scope).ok_or_else(|| {
            StoreError::Database(format!("token {id} has unknown scope {scope:?}"))
          })?;
          Some(TokenRecord {
            id,
            scope,
            label: row.get(2),
          })
        }
        None => None,
      }
    })
  }

  fn use_join_token(&self, hash: String) -> BoxFuture<'_, StoreResult<bool>> {
    transaction!(self, true, |tx| {
      tx.execute(
        "DELETE FROM tokens WHERE hash = $1 AND scope = $2",
        &[&hash, &Scope::EdgeJoin.name()],
      )
      .await?
        == 1
    })
  }

  fn setting(&self, key: String) -> BoxFuture<'_, StoreResult<Option<String>>> {
    transaction!(self, false, |tx| {
      tx.query_opt("SELECT value FROM settings WHERE key = $1", &[&key])
        .await?
        .map(|row| row.get(0))
    })
  }

  fn init_setting(&self, key: String, value: String) -> BoxFuture<'_, StoreResult<String>> {
    transaction!(self, true, |tx| {
      tx.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        &[&key, &value],
      )
      .await?;
      tx.query_one("SELECT value FROM settings WHERE key = $1", &[&key])
        .await?
        .get(0)
    })
  }

  fn put_version(
    &self,
    worker: String,
    hash: String,
    bytes: Vec<u8>,
  ) -> BoxFuture<'_, StoreResult<Uploaded>> {
    transaction!(self, true, |tx| {
      // A new bundle keeps the newest version's secrets; the same bundle
      // with the same secrets is the same version.
      let secrets: Option<String> = tx
        .query_opt(
          "SELECT secrets FROM versions WHERE worker = $1 ORDER BY number DESC LIMIT 1",
          &[&worker],
        )
        .await?
        .and_then(|row| row.get(0));
      let existing = tx
        .query_opt(
          &format!(
            "{VERSION_COLUMNS} WHERE v.worker = $1 AND v.hash = $2 \
             AND v.secrets IS NOT DISTINCT FROM $3 ORDER BY v.number DESC LIMIT 1"
          ),
          &[&worker, &hash, &secrets],
        )
        .await?;
      match existing {
        Some(row) => Uploaded {
          version: version_info(&row),
          created: false,
        },
        None => {
          let size = bytes.len() as i64;
          tx.execute(
            "INSERT INTO bundles (hash, bytes, size) VALUES ($1, $2, $3) ON CONFLICT (hash) DO NOTHING",
            &[&hash, &bytes, &size],
          )
          .await?;
          let (number, created_at) =
            insert_version(&tx, &worker, &hash, secrets.as_deref()).await?;
          Uploaded {
            version: VersionInfo {
              worker,
              number: number as u64,
              hash,
              size: size as u64,
              created_at,
            },
            created: true,
          }
        }
      }
    })
  }

  fn versions(&self, worker: String) -> BoxFuture<'_, StoreResult<Vec<VersionInfo>>> {
    transaction!(self, false, |tx| {
      tx.query(
        &format!("{VERSION_COLUMNS} WHERE v.worker = $1 ORDER BY v.number"),
        &[&worker],
      )
      .await?
      .iter()
      .map(version_info)
      .collect()
    })
  }

  fn bundle(&self, hash: String) -> BoxFuture<'_, StoreResult<Option<Vec<u8>>>> {
    transaction!(self, false, |tx| {
      tx.query_opt("SELECT bytes FROM bundles WHERE hash = $1", &[&hash])
        .await?
        .map(|row| row.get(0))
    })
  }

  fn deploy(&self, worker: String, shares: Vec<Share>) -> BoxFuture<'_, StoreResult<Deployment>> {
    transaction!(self, true, |tx| {
      check_shares(&shares)?;
      insert_deployment(&tx, &worker, shares, None).await?
    })
  }

  fn remove_worker(&self, worker: String) -> BoxFuture<'_, StoreResult<Deployment>> {
    transaction!(self, true, |tx| {
      let routes = tx
        .execute("DELETE FROM routes WHERE worker = $1", &[&worker])
        .await?;
      let serving = latest_deployment(&tx, &worker, i64::MAX)
        .await?
        .is_some_and(|d| !d.shares.is_empty());
      if !serving && routes == 0 {
        return Err(StoreError::NotFound(format!(
          "worker {worker:?} is not deployed"
        )));
      }
      insert_deployment(&tx, &worker, Vec::new(), None).await?
    })
  }

  fn rollback(&self, worker: String) -> BoxFuture<'_, StoreResult<Deployment>> {
    transaction!(self, true, |tx| {
      let current = latest_deployment(&tx, &worker, i64::MAX)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("worker {worker:?} has no deployment")))?;
      // As in the SQLite store: a rollback stands where the deployment it
      // restored stood.
      let position = current.restores.unwrap_or(current.id);
      let previous = latest_deployment(&tx, &worker, position)
        .await?
        .ok_or_else(|| {
          StoreError::Conflict(format!(
            "worker {worker:?} has no earlier deployment to roll back to"
          ))
        })?;
      let restores = previous.restores.unwrap_or(previous.id);
      insert_deployment(&tx, &worker, previous.shares, Some(restores)).await?
    })
  }

  fn deployments(&self, worker: String) -> BoxFuture<'_, StoreResult<Vec<Deployment>>> {
    transaction!(self, false, |tx| {
      tx.query(
        &format!("{DEPLOYMENT_COLUMNS} WHERE worker = $1 ORDER BY id DESC"),
        &[&worker],
      )
      .await?
      .iter()
      .map(deployment)
      .collect::<StoreResult<Vec<_>>>()?
    })
  }

  fn put_route(&self, pattern: RoutePattern, worker: String) -> BoxFuture<'_, StoreResult<u64>> {
    transaction!(self, true, |tx| {
      let key = pattern.to_string();
      let holder: Option<String> = tx
        .query_opt("SELECT worker FROM routes WHERE pattern = $1", &[&key])
        .await?
        .map(|row| row.get(0));
      match holder {
        Some(holder) if holder == worker => {}
        Some(holder) => {
          return Err(StoreError::Conflict(format!(
            "route {key} already routes to worker {holder:?}"
          )));
        }
        None => {
          tx.execute(
            "INSERT INTO routes (pattern, worker) VALUES ($1, $2)",
            &[&key, &worker],
          )
          .await?;
        }
      }
      record_change(&tx, "route", &key).await?
    })
  }

  fn delete_route(&self, pattern: RoutePattern) -> BoxFuture<'_, StoreResult<u64>> {
    transaction!(self, true, |tx| {
      let key = pattern.to_string();
      if tx
        .execute("DELETE FROM routes WHERE pattern = $1", &[&key])
        .await?
        == 0
      {
        return Err(StoreError::NotFound(format!("no route {key}")));
      }
      record_change(&tx, "route", &key).await?
    })
  }

  fn state(&self) -> BoxFuture<'_, StoreResult<State>> {
    transaction!(self, false, |tx| {
      let epoch: i64 = tx
        .query_one("SELECT coalesce(max(epoch), 0) FROM changes", &[])
        .await?
        .get(0);
      let rows = tx
        .query(
          &format!("{DEPLOYMENT_COLUMNS} WHERE id IN (SELECT max(id) FROM deployments GROUP BY worker) ORDER BY worker"),
          &[],
        )
        .await?;
      let mut workers = Vec::with_capacity(rows.len());
      for row in &rows {
        let deployment = deployment(row)?;
        if deployment.shares.is_empty() {
          continue; // removed
        }
        let mut versions = Vec::with_capacity(deployment.shares.len());
        for share in &deployment.shares {
          let hash: String = tx
            .query_one(
              "SELECT hash FROM versions WHERE worker = $1 AND number = $2",
              &[&deployment.worker, &(share.version as i64)],
            )
            .await?
            .get(0);
          versions.push(DeployedVersion {
            number: share.version,
            hash,
            percent: share.percent,
            secrets: Default::default(),
          });
        }
        workers.push(WorkerDeployment {
          worker: deployment.worker,
          versions,
        });
      }
      let mut routes = Vec::new();
      for row in tx
        .query("SELECT pattern, worker FROM routes ORDER BY pattern", &[])
        .await?
      {
        let pattern: String = row.get(0);
        let pattern =
          RoutePattern::parse(&pattern).map_err(|err| StoreError::Database(err.to_string()))?;
        routes.push(Route {
          pattern,
          worker: row.get(1),
        });
      }
      // Certificates are added by the control plane, which can open their keys.
      State {
        epoch: epoch as u64,
        workers,
        routes,
        certificates: Vec::new(),
      }
    })
  }

  fn add_edge(&self, id: String, name: String) -> BoxFuture<'_, StoreResult<EdgeInfo>> {
    transaction!(self, true, |tx| {
      let enrolled_at = now();
      tx.execute(
        "INSERT INTO edges (id, name, enrolled_at) VALUES ($1, $2, $3)",
        &[&id, &name, &enrolled_at],
      )
      .await?;
      EdgeInfo {
        id,
        name,
        enrolled_at,
        last_seen: None,
        epoch: 0,
      }
    })
  }

  fn edge_seen(&self, id: String, epoch: u64) -> BoxFuture<'_, StoreResult<()>> {
    transaction!(self, false, |tx| {
      tx.execute(
        "UPDATE edges SET last_seen = $2, epoch = greatest(epoch, $3) WHERE id = $1",
        &[&id, &now(), &(epoch as i64)],
      )
      .await?;
    })
  }

  fn edges(&self) -> BoxFuture<'_, StoreResult<Vec<EdgeInfo>>> {
    transaction!(self, false, |tx| {
      tx.query(
        "SELECT id, name, enrolled_at, last_seen, epoch FROM edges ORDER BY name, id",
        &[],
      )
      .await?
      .iter()
      .map(|row| EdgeInfo {
        id: row.get(0),
        name: row.get(1),
        enrolled_at: row.get(2),
        last_seen: row.get(3),
        epoch: row.get::<_, i64>(4) as u64,
      })
      .collect()
    })
  }

  fn remove_edge(&self, id: String) -> BoxFuture<'_, StoreResult<bool>> {
    transaction!(self, true, |tx| tx
      .execute("DELETE FROM edges WHERE id = $1", &[&id])
      .await?
      == 1)
  }
}
