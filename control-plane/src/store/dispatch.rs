//! Dispatch namespaces: named sets of user workers that a dispatcher
//! worker reaches through `[[dispatch_namespaces]]`, never a public route.
//!
//! A user worker is stored as any worker is (versions, deployments,
//! secrets), under the name `<namespace>/<worker>`
//! ([`outpost_protocol::namespaced_worker`]), so everything a worker can
//! do it can do, and edges install it like any other; only the routing
//! table leaves it out of public names. This table records which
//! namespaces exist.

use futures::future::BoxFuture;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::postgres::{self, PostgresStore, transaction};
use super::sqlite::{self, SqliteStore};
use super::{StoreError, StoreResult, now};

/// The table, in both databases' migrations.
pub(super) const DISPATCH_NAMESPACES_TABLE: &str = r#"
  CREATE TABLE dispatch_namespaces (name TEXT PRIMARY KEY, created_at BIGINT NOT NULL);
"#;

/// A dispatch namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchNamespaceInfo {
  /// Its name.
  pub name: String,
  /// When it was created, in seconds since the Unix epoch.
  pub created_at: i64,
  /// How many of its user workers are deployed now.
  pub workers: u64,
}

/// A user worker of a dispatch namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserWorkerInfo {
  /// Its name in the namespace.
  pub name: String,
  /// Its newest version's number.
  pub newest_version: u64,
  /// Whether it is deployed now.
  pub deployed: bool,
}

/// Where dispatch namespaces are kept.
pub trait DispatchStore {
  /// Creates namespace `name`; a conflict if it exists.
  fn create_dispatch_namespace(
    &self,
    name: String,
  ) -> BoxFuture<'_, StoreResult<DispatchNamespaceInfo>>;
  /// Every namespace, by name.
  fn dispatch_namespaces(&self) -> BoxFuture<'_, StoreResult<Vec<DispatchNamespaceInfo>>>;
  /// Namespace `name`, if it exists.
  fn dispatch_namespace(
    &self,
    name: String,
  ) -> BoxFuture<'_, StoreResult<Option<DispatchNamespaceInfo>>>;
  /// The user workers ever uploaded to `namespace`, by name.
  fn user_workers(&self, namespace: String) -> BoxFuture<'_, StoreResult<Vec<UserWorkerInfo>>>;
  /// Deletes namespace `name` and stops serving its user workers (their
  /// versions stay stored). Returns the new epoch.
  fn delete_dispatch_namespace(&self, name: String) -> BoxFuture<'_, StoreResult<u64>>;
}

/// The prefix of the stored names of `namespace`'s user workers. Names
/// hold only `[a-z0-9-]`, so it is matched exactly with `substr`.
fn prefix(namespace: &str) -> String {
  outpost_protocol::namespaced_worker(namespace, "")
}

/// Stored name, newest version, and whether its latest deployment
/// serves: one row per user worker of the namespace whose prefix is `$1`
/// (`?1`), whose length is `$2` (`?2`).
const USER_WORKERS: &str = "
  SELECT v.worker, max(v.number),
    coalesce((SELECT d.shares <> '[]' FROM deployments d WHERE d.worker = v.worker
      ORDER BY d.id DESC LIMIT 1), false)
  FROM versions v WHERE substr(v.worker, 1, $2) = $1 GROUP BY v.worker ORDER BY v.worker";

fn sqlite_params(sql: &str) -> String {
  sql.replace("$1", "?1").replace("$2", "?2")
}

fn not_found(name: &str) -> StoreError {
  StoreError::NotFound(format!("no dispatch namespace {name:?}"))
}

fn user_worker(prefix: &str, stored: String, newest: i64, deployed: bool) -> UserWorkerInfo {
  UserWorkerInfo {
    name: stored
      .strip_prefix(prefix)
      .map_or_else(|| stored.clone(), str::to_owned),
    newest_version: u64::try_from(newest).unwrap_or(0),
    deployed,
  }
}

fn sqlite_user_workers(
  tx: &rusqlite::Transaction<'_>,
  namespace: &str,
) -> StoreResult<Vec<UserWorkerInfo>> {
  let prefix = prefix(namespace);
  let mut statement = tx.prepare(&sqlite_params(USER_WORKERS))?;
  let rows = statement
    .query_map(params![prefix, prefix.len() as i64], |row| {
      Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    })?
    .collect::<Result<Vec<(String, i64, bool)>, _>>()?;
  Ok(
    rows
      .into_iter()
      .map(|(stored, newest, deployed)| user_worker(&prefix, stored, newest, deployed))
      .collect(),
  )
}

fn sqlite_info(
  tx: &rusqlite::Transaction<'_>,
  name: String,
  created_at: i64,
) -> StoreResult<DispatchNamespaceInfo> {
  let workers = sqlite_user_workers(tx, &name)?;
  Ok(DispatchNamespaceInfo {
    workers: workers.iter().filter(|w| w.deployed).count() as u64,
    name,
    created_at,
  })
}

impl DispatchStore for SqliteStore {
  fn create_dispatch_namespace(
    &self,
    name: String,
  ) -> BoxFuture<'_, StoreResult<DispatchNamespaceInfo>> {
    self.transaction(move |tx| {
      let created_at = now();
      let added = tx.execute(
        "INSERT INTO dispatch_namespaces (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        params![name, created_at],
      )?;
      if added == 0 {
        return Err(StoreError::Conflict(format!(
          "dispatch namespace {name:?} exists already"
        )));
      }
      sqlite_info(tx, name, created_at)
    })
  }

  fn dispatch_namespaces(&self) -> BoxFuture<'_, StoreResult<Vec<DispatchNamespaceInfo>>> {
    self.transaction(move |tx| {
      let mut statement =
        tx.prepare("SELECT name, created_at FROM dispatch_namespaces ORDER BY name")?;
      let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<Vec<(String, i64)>, _>>()?;
      rows
        .into_iter()
        .map(|(name, created_at)| sqlite_info(tx, name, created_at))
        .collect()
    })
  }

  fn dispatch_namespace(
    &self,
    name: String,
  ) -> BoxFuture<'_, StoreResult<Option<DispatchNamespaceInfo>>> {
    self.transaction(move |tx| {
      let created_at: Option<i64> = tx
        .query_row(
          "SELECT created_at FROM dispatch_namespaces WHERE name = ?1",
          params![name],
          |row| row.get(0),
        )
        .optional()?;
      created_at
        .map(|created_at| sqlite_info(tx, name, created_at))
        .transpose()
    })
  }

  fn user_workers(&self, namespace: String) -> BoxFuture<'_, StoreResult<Vec<UserWorkerInfo>>> {
    self.transaction(move |tx| sqlite_user_workers(tx, &namespace))
  }

  fn delete_dispatch_namespace(&self, name: String) -> BoxFuture<'_, StoreResult<u64>> {
    self.transaction(move |tx| {
      if tx.execute(
        "DELETE FROM dispatch_namespaces WHERE name = ?1",
        params![name],
      )? == 0
      {
        return Err(not_found(&name));
      }
      let prefix = prefix(&name);
      for worker in sqlite_user_workers(tx, &name)? {
        if worker.deployed {
          let stored = format!("{prefix}{}", worker.name);
          sqlite::insert_deployment(tx, &stored, Vec::new(), None)?;
        }
      }
      sqlite::record_change(tx, "dispatch-namespace", &name)
    })
  }
}

async fn postgres_user_workers(
  tx: &tokio_postgres::Transaction<'_>,
  namespace: &str,
) -> StoreResult<Vec<UserWorkerInfo>> {
  let prefix = prefix(namespace);
  let length = prefix.len() as i32;
  let rows = tx.query(USER_WORKERS, &[&prefix, &length]).await?;
  Ok(
    rows
      .iter()
      .map(|row| user_worker(&prefix, row.get(0), row.get(1), row.get(2)))
      .collect(),
  )
}

async fn postgres_info(
  tx: &tokio_postgres::Transaction<'_>,
  name: String,
  created_at: i64,
) -> StoreResult<DispatchNamespaceInfo> {
  let workers = postgres_user_workers(tx, &name).await?;
  Ok(DispatchNamespaceInfo {
    workers: workers.iter().filter(|w| w.deployed).count() as u64,
    name,
    created_at,
  })
}

impl DispatchStore for PostgresStore {
  fn create_dispatch_namespace(
    &self,
    name: String,
  ) -> BoxFuture<'_, StoreResult<DispatchNamespaceInfo>> {
    transaction!(self, true, |tx| {
      let created_at = now();
      let added = tx
        .execute(
          "INSERT INTO dispatch_namespaces (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
          &[&name, &created_at],
        )
        .await?;
      if added == 0 {
        return Err(StoreError::Conflict(format!(
          "dispatch namespace {name:?} exists already"
        )));
      }
      postgres_info(&tx, name, created_at).await?
    })
  }

  fn dispatch_namespaces(&self) -> BoxFuture<'_, StoreResult<Vec<DispatchNamespaceInfo>>> {
    transaction!(self, false, |tx| {
      let rows = tx
        .query(
          "SELECT name, created_at FROM dispatch_namespaces ORDER BY name",
          &[],
        )
        .await?;
      let mut namespaces = Vec::with_capacity(rows.len());
      for row in rows {
        namespaces.push(postgres_info(&tx, row.get(0), row.get(1)).await?);
      }
      namespaces
    })
  }

  fn dispatch_namespace(
    &self,
    name: String,
  ) -> BoxFuture<'_, StoreResult<Option<DispatchNamespaceInfo>>> {
    transaction!(self, false, |tx| {
      let row = tx
        .query_opt(
          "SELECT created_at FROM dispatch_namespaces WHERE name = $1",
          &[&name],
        )
        .await?;
      match row {
        Some(row) => Some(postgres_info(&tx, name, row.get(0)).await?),
        None => None,
      }
    })
  }

  fn user_workers(&self, namespace: String) -> BoxFuture<'_, StoreResult<Vec<UserWorkerInfo>>> {
    transaction!(self, false, |tx| {
      postgres_user_workers(&tx, &namespace).await?
    })
  }

  fn delete_dispatch_namespace(&self, name: String) -> BoxFuture<'_, StoreResult<u64>> {
    transaction!(self, true, |tx| {
      let deleted = tx
        .execute("DELETE FROM dispatch_namespaces WHERE name = $1", &[&name])
        .await?;
      if deleted == 0 {
        return Err(not_found(&name));
      }
      let prefix = prefix(&name);
      for worker in postgres_user_workers(&tx, &name).await? {
        if worker.deployed {
          let stored = format!("{prefix}{}", worker.name);
          postgres::insert_deployment(&tx, &stored, Vec::new(), None).await?;
        }
      }
      postgres::record_change(&tx, "dispatch-namespace", &name).await?
    })
  }
}
