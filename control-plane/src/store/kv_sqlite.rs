//! [`KvStore`] on the SQLite store.

use futures::future::BoxFuture;
use outpost_protocol::kv::{KvEntry, KvListKey, KvListOptions, KvListPage};
use rusqlite::{OptionalExtension, Transaction, params};

use super::kv::{KvNamespaceInfo, KvStore, KvWrite, from_sql_time, page, sql_time};
use super::sqlite::SqliteStore;
use super::{StoreError, StoreResult, now};

fn require_namespace(tx: &Transaction<'_>, id: &str) -> StoreResult<()> {
  let found = tx
    .query_row(
      "SELECT 1 FROM kv_namespaces WHERE id = ?1",
      params![id],
      |_| Ok(()),
    )
    .optional()?;
  found.ok_or_else(|| StoreError::NotFound(format!("no KV namespace has id {id:?}")))
}

fn namespace_info(row: &rusqlite::Row<'_>) -> rusqlite::Result<KvNamespaceInfo> {
  Ok(KvNamespaceInfo {
    id: row.get(0)?,
    title: row.get(1)?,
    created_at: row.get(2)?,
  })
}

impl KvStore for SqliteStore {
  fn create_kv_namespace(
    &self,
    id: String,
    title: String,
  ) -> BoxFuture<'_, StoreResult<KvNamespaceInfo>> {
    self.transaction(move |tx| {
      let taken = tx
        .query_row(
          "SELECT 1 FROM kv_namespaces WHERE title = ?1 OR id = ?2",
          params![title, id],
          |_| Ok(()),
        )
        .optional()?;
      if taken.is_some() {
        return Err(StoreError::Conflict(format!(
          "a KV namespace titled {title:?} exists already"
        )));
      }
      let created_at = now();
      tx.execute(
        "INSERT INTO kv_namespaces (id, title, created_at) VALUES (?1, ?2, ?3)",
        params![id, title, created_at],
      )?;
      Ok(KvNamespaceInfo {
        id,
        title,
        created_at,
      })
    })
  }

  fn kv_namespaces(&self) -> BoxFuture<'_, StoreResult<Vec<KvNamespaceInfo>>> {
    self.transaction(|tx| {
      let mut statement =
        tx.prepare("SELECT id, title, created_at FROM kv_namespaces ORDER BY title")?;
      let rows = statement.query_map([], namespace_info)?;
      Ok(rows.collect::<Result<_, _>>()?)
    })
  }

  fn delete_kv_namespace(&self, id: String) -> BoxFuture<'_, StoreResult<bool>> {
    self.transaction(move |tx| {
      tx.execute("DELETE FROM kv_entries WHERE namespace = ?1", params![id])?;
      Ok(tx.execute("DELETE FROM kv_namespaces WHERE id = ?1", params![id])? > 0)
    })
  }

  fn kv_get(
    &self,
    namespace: String,
    key: String,
    now: u64,
  ) -> BoxFuture<'_, StoreResult<Option<KvEntry>>> {
    self.transaction(move |tx| {
      require_namespace(tx, &namespace)?;
      let entry = tx
        .query_row(
          "SELECT value, metadata, expiration FROM kv_entries \
           WHERE namespace = ?1 AND key = ?2 AND (expiration IS NULL OR expiration > ?3)",
          params![namespace, key, sql_time(now)],
          |row| {
            Ok(KvEntry {
              value: row.get(0)?,
              metadata: row.get(1)?,
              expiration: from_sql_time(row.get(2)?),
            })
          },
        )
        .optional()?;
      Ok(entry)
    })
  }

  fn kv_write(&self, namespace: String, writes: Vec<KvWrite>) -> BoxFuture<'_, StoreResult<()>> {
    self.transaction(move |tx| {
      require_namespace(tx, &namespace)?;
      let mut put = tx.prepare(
        "INSERT INTO kv_entries (namespace, key, value, metadata, expiration) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (namespace, key) DO UPDATE SET \
         value = excluded.value, metadata = excluded.metadata, expiration = excluded.expiration",
      )?;
      let mut delete = tx.prepare("DELETE FROM kv_entries WHERE namespace = ?1 AND key = ?2")?;
      for write in writes {
        match write {
          KvWrite::Put { key, entry } => {
            put.execute(params![
              namespace,
              key,
              entry.value,
              entry.metadata,
              entry.expiration.map(sql_time)
            ])?;
          }
          KvWrite::Delete { key } => {
            delete.execute(params![namespace, key])?;
          }
        }
      }
      Ok(())
    })
  }

  fn kv_list(
    &self,
    namespace: String,
    options: KvListOptions,
    now: u64,
  ) -> BoxFuture<'_, StoreResult<KvListPage>> {
    self.transaction(move |tx| {
      require_namespace(tx, &namespace)?;
      // Keys compare as bytes (SQLite's BINARY collation), as cursors need.
      let mut statement = tx.prepare(
        "SELECT key, expiration, metadata FROM kv_entries \
         WHERE namespace = ?1 AND substr(key, 1, length(?2)) = ?2 AND key > ?3 \
         AND (expiration IS NULL OR expiration > ?4) ORDER BY key LIMIT ?5",
      )?;
      let limit = i64::try_from(options.limit + 1).unwrap_or(i64::MAX);
      let rows = statement.query_map(
        params![
          namespace,
          options.prefix,
          options.cursor.unwrap_or_default(),
          sql_time(now),
          limit
        ],
        |row| {
          Ok(KvListKey {
            name: row.get(0)?,
            expiration: from_sql_time(row.get(1)?),
            metadata: row.get(2)?,
          })
        },
      )?;
      Ok(page(rows.collect::<Result<_, _>>()?, options.limit))
    })
  }
}
