//! [`Store`] on an embedded SQLite database, one file in the data folder.
//!
//! rusqlite is synchronous: each operation runs on Tokio's blocking pool
//! holding the one connection. WAL mode and a busy timeout let a second
//! process (`outpost control token create`) write while the server runs.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use outpost_protocol::RoutePattern;
use outpost_protocol::sync::{DeployedVersion, Route, State, WorkerDeployment};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{
  Deployment, EdgeInfo, Scope, Share, Store, StoreError, StoreResult, TokenRecord, Uploaded,
  VersionInfo, check_shares, now,
};

/// Schema migrations, applied in order; a database records how many it has.
const MIGRATIONS: &[&str] = &[
  r#"
  CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hash TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE bundles (hash TEXT PRIMARY KEY, bytes BLOB NOT NULL, size INTEGER NOT NULL);
  CREATE TABLE versions (
    worker TEXT NOT NULL,
    number INTEGER NOT NULL,
    hash TEXT NOT NULL REFERENCES bundles (hash),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (worker, number),
    UNIQUE (worker, hash)
  );
  CREATE TABLE changes (
    epoch INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    worker TEXT NOT NULL,
    shares TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    restores INTEGER
  );
  CREATE INDEX deployments_by_worker ON deployments (worker, id);
  CREATE TABLE routes (pattern TEXT PRIMARY KEY, worker TEXT NOT NULL);
  CREATE TABLE edges (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    enrolled_at INTEGER NOT NULL,
    last_seen INTEGER,
    epoch INTEGER NOT NULL DEFAULT 0
  );
"#,
  r#"
  CREATE TABLE kv_namespaces (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE kv_entries (
    namespace TEXT NOT NULL REFERENCES kv_namespaces (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    metadata TEXT,
    expiration INTEGER,
    PRIMARY KEY (namespace, key)
  ) WITHOUT ROWID;
"#,
  r#"
  CREATE TABLE certificates (
    host TEXT PRIMARY KEY,
    cert_pem TEXT NOT NULL,
    key_sealed TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
"#,
  // Secrets: sealed per version; a version's bundle may recur with other
  // secrets.
  r#"
  CREATE TABLE versions_with_secrets (
    worker TEXT NOT NULL,
    number INTEGER NOT NULL,
    hash TEXT NOT NULL REFERENCES bundles (hash),
    created_at INTEGER NOT NULL,
    secrets TEXT,
    PRIMARY KEY (worker, number)
  );
  INSERT INTO versions_with_secrets (worker, number, hash, created_at)
    SELECT worker, number, hash, created_at FROM versions;
  DROP TABLE versions;
  ALTER TABLE versions_with_secrets RENAME TO versions;
"#,
  // Cron firings: the primary key makes each claimable once.
  super::crons::CRON_FIRINGS_TABLE,
  // Static assets' bytes, once per content hash.
  r#"
  CREATE TABLE assets (hash TEXT PRIMARY KEY, bytes BLOB NOT NULL, size BIGINT NOT NULL);
"#,
  // Dispatch namespaces; their user workers are workers named
  // `<namespace>/<name>`.
  super::dispatch::DISPATCH_NAMESPACES_TABLE,
];

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
  connection: Arc<Mutex<Connection>>,
}

impl SqliteStore {
  /// Opens (creating if needed) the database at `path` and brings its
  /// schema up to date.
  pub fn open(path: &Path) -> StoreResult<Self> {
    let mut connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut connection)?;
    Ok(Self {
      connection: Arc::new(Mutex::new(connection)),
    })
  }

  /// Runs `f` in one transaction on the blocking pool.
  pub(super) fn transaction<T, F>(&self, f: F) -> BoxFuture<'_, StoreResult<T>>
  where
    T: Send + 'static,
    F: FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
  {
    let connection = self.connection.clone();
    Box::pin(async move {
      tokio::task::spawn_blocking(move || {
        let mut connection = connection
          .lock()
          .map_err(|_| StoreError::Database("the connection lock is poisoned".into()))?;
        let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
      })
      .await
      .map_err(|err| StoreError::Database(format!("store task failed: {err}")))?
    })
  }
}

fn migrate(connection: &mut Connection) -> StoreResult<()> {
  let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
  tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL)")?;
  let applied: i64 = tx.query_row("SELECT count(*) FROM schema_migrations", [], |row| {
    row.get(0)
  })?;
  let applied = usize::try_from(applied).unwrap_or(0);
  if applied > MIGRATIONS.len() {
    return Err(StoreError::Database(format!(
      "the database has schema version {applied}, newer than this binary's {}",
      MIGRATIONS.len()
    )));
  }
  for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
    tx.execute_batch(migration)?;
    tx.execute(
      "INSERT INTO schema_migrations (version) VALUES (?1)",
      params![index as i64 + 1],
    )?;
  }
  tx.commit()?;
  Ok(())
}

fn token_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, String)> {
  Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn to_token((id, scope, label): (i64, String, String)) -> StoreResult<TokenRecord> {
  let scope = Scope::parse(&scope)
    .ok_or_else(|| StoreError::Database(format!("token {id} has unknown scope {scope:?}")))?;
  Ok(TokenRecord { id, scope, label })
}

/// Records a change and returns its epoch.
pub(super) fn record_change(tx: &Transaction<'_>, kind: &str, subject: &str) -> StoreResult<u64> {
  tx.execute(
    "INSERT INTO changes (kind, subject, created_at) VALUES (?1, ?2, ?3)",
    params![kind, subject, now()],
  )?;
  Ok(u64::try_from(tx.last_insert_rowid()).unwrap_or(0))
}

pub(super) fn version_info(row: &rusqlite::Row<'_>) -> rusqlite::Result<VersionInfo> {
  Ok(VersionInfo {
    worker: row.get(0)?,
    number: row.get::<_, i64>(1)? as u64,
    hash: row.get(2)?,
    size: row.get::<_, i64>(3)? as u64,
    created_at: row.get(4)?,
  })
}

pub(super) const VERSION_COLUMNS: &str = "SELECT v.worker, v.number, v.hash, b.size, v.created_at FROM versions v JOIN bundles b ON b.hash = v.hash";

fn deployment(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Deployment, String)> {
  Ok((
    Deployment {
      id: row.get(0)?,
      worker: row.get(1)?,
      shares: Vec::new(),
      epoch: row.get::<_, i64>(3)? as u64,
      created_at: row.get(4)?,
      restores: row.get(5)?,
    },
    row.get(2)?,
  ))
}

fn with_shares((mut deployment, shares): (Deployment, String)) -> StoreResult<Deployment> {
  deployment.shares = serde_json::from_str(&shares)
    .map_err(|err| StoreError::Database(format!("deployment {}: {err}", deployment.id)))?;
  Ok(deployment)
}

const DEPLOYMENT_COLUMNS: &str =
  "SELECT id, worker, shares, epoch, created_at, restores FROM deployments";

/// Adds `worker`'s next version: bundle `hash` with `secrets` (sealed).
/// Returns its number and creation time.
pub(super) fn insert_version(
  tx: &Transaction<'_>,
  worker: &str,
  hash: &str,
  secrets: Option<&str>,
) -> StoreResult<(i64, i64)> {
  let number: i64 = tx.query_row(
    "SELECT coalesce(max(number), 0) + 1 FROM versions WHERE worker = ?1",
    params![worker],
    |row| row.get(0),
  )?;
  let created_at = now();
  tx.execute(
    "INSERT INTO versions (worker, number, hash, created_at, secrets) VALUES (?1, ?2, ?3, ?4, ?5)",
    params![worker, number, hash, created_at, secrets],
  )?;
  Ok((number, created_at))
}

pub(super) fn latest_deployment(
  tx: &Transaction<'_>,
  worker: &str,
  before: i64,
) -> StoreResult<Option<Deployment>> {
  tx.query_row(
    &format!("{DEPLOYMENT_COLUMNS} WHERE worker = ?1 AND id < ?2 ORDER BY id DESC LIMIT 1"),
    params![worker, before],
    deployment,
  )
  .optional()?
  .map(with_shares)
  .transpose()
}

/// Inserts a deployment of `shares` (checked; none records a removal) and
/// returns it.
pub(super) fn insert_deployment(
  tx: &Transaction<'_>,
  worker: &str,
  shares: Vec<Share>,
  restores: Option<i64>,
) -> StoreResult<Deployment> {
  if !shares.is_empty() {
    check_shares(&shares)?;
  }
  for share in &shares {
    let known: Option<i64> = tx
      .query_row(
        "SELECT 1 FROM versions WHERE worker = ?1 AND number = ?2",
        params![worker, share.version as i64],
        |row| row.get(0),
      )
      .optional()?;
    if known.is_none() {
      return Err(StoreError::NotFound(format!(
        "worker {worker:?} has no version {}",
        share.version
      )));
    }
  }
  let epoch = record_change(tx, "deployment", worker)?;
  let created_at = now();
  let encoded = serde_json::to_string(&shares).map_err(|e| StoreError::Database(e.to_string()))?;
  tx.execute(
    "INSERT INTO deployments (worker, shares, epoch, created_at, restores) VALUES (?1, ?2, ?3, ?4, ?5)",
    params![worker, encoded, epoch as i64, created_at, restores],
  )?;
  Ok(Deployment {
    id: tx.last_insert_rowid(),
    worker: worker.to_owned(),
    shares,
    epoch,
    created_at,
    restores,
  })
}

impl Store for SqliteStore {
  fn create_token(
    &self,
    hash: String,
    scope: Scope,
    label: String,
  ) -> BoxFuture<'_, StoreResult<TokenRecord>> {
    self.transaction(move |tx| {
      tx.execute(
        "INSERT INTO tokens (hash, scope, label, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![hash, scope.name(), label, now()],
      )?;
      Ok(TokenRecord {
        id: tx.last_insert_rowid(),
        scope,
        label,
      })
    })
  }

  fn find_token(&self, hash: String) -> BoxFuture<'_, StoreResult<Option<TokenRecord>>> {
    self.transaction(move |tx| {
      tx.query_row(
        "SELECT id, scope, label FROM tokens WHERE hash = ?1",
        params![hash],
        token_record,
      )
      .optional()?
      .map(to_token)
      .transpose()
    })
  }

  fn use_join_token(&self, hash: String) -> BoxFuture<'_, StoreResult<bool>> {
    self.transaction(move |tx| {
      let deleted = tx.execute(
        "DELETE FROM tokens WHERE hash = ?1 AND scope = ?2",
        params![hash, Scope::EdgeJoin.name()],
      )?;
      Ok(deleted == 1)
    })
  }

  fn setting(&self, key: String) -> BoxFuture<'_, StoreResult<Option<String>>> {
    self.transaction(move |tx| {
      Ok(
        tx.query_row(
          "SELECT value FROM settings WHERE key = ?1",
          params![key],
          |row| row.get(0),
        )
        .optional()?,
      )
    })
  }

  fn init_setting(&self, key: String, value: String) -> BoxFuture<'_, StoreResult<String>> {
    self.transaction(move |tx| {
      tx.execute(
        "INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)",
        params![key, value],
      )?;
      Ok(tx.query_row(
        "SELECT value FROM settings WHERE key = ?1",
        params![key],
        |row| row.get(0),
      )?)
    })
  }

  fn put_version(
    &self,
    worker: String,
    hash: String,
    bytes: Vec<u8>,
  ) -> BoxFuture<'_, StoreResult<Uploaded>> {
    self.transaction(move |tx| {
      // A new bundle keeps the newest version's secrets; the same bundle
      // with the same secrets is the same version.
      let secrets: Option<String> = tx
        .query_row(
          "SELECT secrets FROM versions WHERE worker = ?1 ORDER BY number DESC LIMIT 1",
          params![worker],
          |row| row.get(0),
        )
        .optional()?
        .flatten();
      let existing = tx
        .query_row(
          &format!(
            "{VERSION_COLUMNS} WHERE v.worker = ?1 AND v.hash = ?2 AND v.secrets IS ?3 \
             ORDER BY v.number DESC LIMIT 1"
          ),
          params![worker, hash, secrets],
          version_info,
        )
        .optional()?;
      if let Some(version) = existing {
        return Ok(Uploaded {
          version,
          created: false,
        });
      }
      tx.execute(
        "INSERT OR IGNORE INTO bundles (hash, bytes, size) VALUES (?1, ?2, ?3)",
        params![hash, bytes, bytes.len() as i64],
      )?;
      let (number, created_at) = insert_version(tx, &worker, &hash, secrets.as_deref())?;
      Ok(Uploaded {
        version: VersionInfo {
          worker,
          number: number as u64,
          hash,
          size: bytes.len() as u64,
          created_at,
        },
        created: true,
      })
    })
  }

  fn versions(&self, worker: String) -> BoxFuture<'_, StoreResult<Vec<VersionInfo>>> {
    self.transaction(move |tx| {
      let mut statement = tx.prepare(&format!(
        "{VERSION_COLUMNS} WHERE v.worker = ?1 ORDER BY v.number"
      ))?;
      let versions = statement
        .query_map(params![worker], version_info)?
        .collect::<Result<Vec<_>, _>>()?;
      Ok(versions)
    })
  }

  fn bundle(&self, hash: String) -> BoxFuture<'_, StoreResult<Option<Vec<u8>>>> {
    self.transaction(move |tx| {
      Ok(
        tx.query_row(
          "SELECT bytes FROM bundles WHERE hash = ?1",
          params![hash],
          |row| row.get(0),
        )
        .optional()?,
      )
    })
  }

  fn deploy(&self, worker: String, shares: Vec<Share>) -> BoxFuture<'_, StoreResult<Deployment>> {
    self.transaction(move |tx| {
      check_shares(&shares)?;
      insert_deployment(tx, &worker, shares, None)
    })
  }

  fn remove_worker(&self, worker: String) -> BoxFuture<'_, StoreResult<Deployment>> {
    self.transaction(move |tx| {
      let routes = tx.execute("DELETE FROM routes WHERE worker = ?1", params![worker])?;
      let serving = latest_deployment(tx, &worker, i64::MAX)?.is_some_and(|d| !d.shares.is_empty());
      if !serving && routes == 0 {
        return Err(StoreError::NotFound(format!(
          "worker {worker:?} is not deployed"
        )));
      }
      insert_deployment(tx, &worker, Vec::new(), None)
    })
  }

  fn rollback(&self, worker: String) -> BoxFuture<'_, StoreResult<Deployment>> {
    self.transaction(move |tx| {
      let current = latest_deployment(tx, &worker, i64::MAX)?
        .ok_or_else(|| StoreError::NotFound(format!("worker {worker:?} has no deployment")))?;
      // A rollback stands where the deployment it restored stood, so
      // rolling back again steps further into the past.
      let position = current.restores.unwrap_or(current.id);
      let previous = latest_deployment(tx, &worker, position)?.ok_or_else(|| {
        StoreError::Conflict(format!(
          "worker {worker:?} has no earlier deployment to roll back to"
        ))
      })?;
      let restores = previous.restores.unwrap_or(previous.id);
      insert_deployment(tx, &worker, previous.shares, Some(restores))
    })
  }

  fn deployments(&self, worker: String) -> BoxFuture<'_, StoreResult<Vec<Deployment>>> {
    self.transaction(move |tx| {
      let mut statement = tx.prepare(&format!(
        "{DEPLOYMENT_COLUMNS} WHERE worker = ?1 ORDER BY id DESC"
      ))?;
      let rows = statement
        .query_map(params![worker], deployment)?
        .collect::<Result<Vec<_>, _>>()?;
      rows.into_iter().map(with_shares).collect()
    })
  }

  fn put_route(&self, pattern: RoutePattern, worker: String) -> BoxFuture<'_, StoreResult<u64>> {
    self.transaction(move |tx| {
      let key = pattern.to_string();
      let holder: Option<String> = tx
        .query_row(
          "SELECT worker FROM routes WHERE pattern = ?1",
          params![key],
          |row| row.get(0),
        )
        .optional()?;
      match holder {
        Some(holder) if holder == worker => {}
        Some(holder) => {
          return Err(StoreError::Conflict(format!(
            "route {key} already routes to worker {holder:?}"
          )));
        }
        None => {
          tx.execute(
            "INSERT INTO routes (pattern, worker) VALUES (?1, ?2)",
            params![key, worker],
          )?;
        }
      }
      record_change(tx, "route", &key)
    })
  }

  fn delete_route(&self, pattern: RoutePattern) -> BoxFuture<'_, StoreResult<u64>> {
    self.transaction(move |tx| {
      let key = pattern.to_string();
      if tx.execute("DELETE FROM routes WHERE pattern = ?1", params![key])? == 0 {
        return Err(StoreError::NotFound(format!("no route {key}")));
      }
      record_change(tx, "route", &key)
    })
  }

  fn state(&self) -> BoxFuture<'_, StoreResult<State>> {
    self.transaction(move |tx| {
      let epoch: i64 = tx.query_row("SELECT coalesce(max(epoch), 0) FROM changes", [], |row| row.get(0))?;
      let mut statement = tx.prepare(&format!(
        "{DEPLOYMENT_COLUMNS} WHERE id IN (SELECT max(id) FROM deployments GROUP BY worker) ORDER BY worker"
      ))?;
      let active = statement.query_map([], deployment)?.collect::<Result<Vec<_>, _>>()?;
      let mut workers = Vec::with_capacity(active.len());
      for row in active {
        let deployment = with_shares(row)?;
        if deployment.shares.is_empty() {
          continue; // removed
        }
        let mut versions = Vec::with_capacity(deployment.shares.len());
        for share in &deployment.shares {
          let hash: String = tx.query_row(
            "SELECT hash FROM versions WHERE worker = ?1 AND number = ?2",
            params![deployment.worker, share.version as i64],
            |row| row.get(0),
          )?;
          versions.push(DeployedVersion {
            number: share.version,
            hash,
            percent: share.percent,
            secrets: Default::default(),
          });
        }
        workers.push(WorkerDeployment { worker: deployment.worker, versions });
      }
      let mut statement = tx.prepare("SELECT pattern, worker FROM routes ORDER BY pattern")?;
      let rows = statement
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
      let routes = rows
        .into_iter()
        .map(|(pattern, worker)| {
          RoutePattern::parse(&pattern)
            .map(|pattern| Route { pattern, worker })
            .map_err(|err| StoreError::Database(err.to_string()))
        })
        .collect::<StoreResult<Vec<_>>>()?;
      // Certificates are added by the control plane, which can open their keys.
      Ok(State {
        epoch: epoch as u64,
        workers,
        routes,
        certificates: Vec::new(),
      })
    })
  }

  fn add_edge(&self, id: String, name: String) -> BoxFuture<'_, StoreResult<EdgeInfo>> {
    self.transaction(move |tx| {
      let enrolled_at = now();
      tx.execute(
        "INSERT INTO edges (id, name, enrolled_at) VALUES (?1, ?2, ?3)",
        params![id, name, enrolled_at],
      )?;
      Ok(EdgeInfo {
        id,
        name,
        enrolled_at,
        last_seen: None,
        epoch: 0,
      })
    })
  }

  fn edge_seen(&self, id: String, epoch: u64) -> BoxFuture<'_, StoreResult<()>> {
    self.transaction(move |tx| {
      tx.execute(
        "UPDATE edges SET last_seen = ?2, epoch = max(epoch, ?3) WHERE id = ?1",
        params![id, now(), epoch as i64],
      )?;
      Ok(())
    })
  }

  fn edges(&self) -> BoxFuture<'_, StoreResult<Vec<EdgeInfo>>> {
    self.transaction(move |tx| {
      let mut statement =
        tx.prepare("SELECT id, name, enrolled_at, last_seen, epoch FROM edges ORDER BY name, id")?;
      let edges = statement
        .query_map([], |row| {
          Ok(EdgeInfo {
            id: row.get(0)?,
            name: row.get(1)?,
            enrolled_at: row.get(2)?,
            last_seen: row.get(3)?,
            epoch: row.get::<_, i64>(4)? as u64,
          })
        })?
        .collect::<Result<Vec<_>, _>>()?;
      Ok(edges)
    })
  }

  fn remove_edge(&self, id: String) -> BoxFuture<'_, StoreResult<bool>> {
    self.transaction(move |tx| Ok(tx.execute("DELETE FROM edges WHERE id = ?1", params![id])? == 1))
  }
}
