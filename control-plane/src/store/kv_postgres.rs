//! [`KvStore`] on the PostgreSQL store. KV writes do not take the write
//! lock: they make no epoch, and each key's last write wins. Each write
//! is announced on `outpost_kv` for the other replicas' edges.

use futures::future::BoxFuture;
use outpost_protocol::kv::{KvEntry, KvListKey, KvListOptions, KvListPage};
use tokio_postgres::Transaction;

use super::kv::{KvNamespaceInfo, KvStore, KvWrite, from_sql_time, page, sql_time};
use super::postgres::{PostgresStore, announce_kv, transaction};
use super::{StoreError, StoreResult, now};

async fn require_namespace(tx: &Transaction<'_>, id: &str) -> StoreResult<()> {
  let found = tx
    .query_opt("SELECT 1 FROM kv_namespaces WHERE id = $1", &[&id])
    .await?;
  found
    .map(|_| ())
    .ok_or_else(|| StoreError::NotFound(format!("no KV namespace has id {id:?}")))
}

impl KvStore for PostgresStore {
  fn create_kv_namespace(
    &self,
    id: String,
    title: String,
  ) -> BoxFuture<'_, StoreResult<KvNamespaceInfo>> {
    transaction!(self, false, |tx| {
      let created_at = now();
      let inserted = tx
        .execute(
          "INSERT INTO kv_namespaces (id, title, created_at) VALUES ($1, $2, $3) \
           ON CONFLICT DO NOTHING",
          &[&id, &title, &created_at],
        )
        .await?;
      if inserted == 0 {
        return Err(StoreError::Conflict(format!(
          "a KV namespace titled {title:?} exists already"
        )));
      }
      KvNamespaceInfo {
        id,
        title,
        created_at,
      }
    })
  }

  fn kv_namespaces(&self) -> BoxFuture<'_, StoreResult<Vec<KvNamespaceInfo>>> {
    transaction!(self, false, |tx| {
      tx.query(
        "SELECT id, title, created_at FROM kv_namespaces ORDER BY title",
        &[],
      )
      .await?
      .iter()
      .map(|row| KvNamespaceInfo {
        id: row.get(0),
        title: row.get(1),
        created_at: row.get(2),
      })
      .collect()
    })
  }

  fn delete_kv_namespace(&self, id: String) -> BoxFuture<'_, StoreResult<bool>> {
    let replica = self.replica.clone();
    transaction!(self, false, |tx| {
      tx.execute("DELETE FROM kv_entries WHERE namespace = $1", &[&id])
        .await?;
      announce_kv(&tx, &replica, &id, None).await?;
      tx.execute("DELETE FROM kv_namespaces WHERE id = $1", &[&id])
        .await?
        > 0
    })
  }

  fn kv_get(
    &self,
    namespace: String,
    key: String,
    now: u64,
  ) -> BoxFuture<'_, StoreResult<Option<KvEntry>>> {
    transaction!(self, false, |tx| {
      require_namespace(&tx, &namespace).await?;
      tx.query_opt(
        "SELECT value, metadata, expiration FROM kv_entries \
         WHERE namespace = $1 AND key = $2 AND (expiration IS NULL OR expiration > $3)",
        &[&namespace, &key, &sql_time(now)],
      )
      .await?
      .map(|row| KvEntry {
        value: row.get(0),
        metadata: row.get(1),
        expiration: from_sql_time(row.get(2)),
      })
    })
  }

  fn kv_write(&self, namespace: String, writes: Vec<KvWrite>) -> BoxFuture<'_, StoreResult<()>> {
    let replica = self.replica.clone();
    transaction!(self, false, |tx| {
      require_namespace(&tx, &namespace).await?;
      let keys = writes.iter().map(|w| w.key().to_owned()).collect();
      announce_kv(&tx, &replica, &namespace, Some(keys)).await?;
      let put = tx
        .prepare(
          "INSERT INTO kv_entries (namespace, key, value, metadata, expiration) \
           VALUES ($1, $2, $3, $4, $5) \
           ON CONFLICT (namespace, key) DO UPDATE SET \
           value = excluded.value, metadata = excluded.metadata, expiration = excluded.expiration",
        )
        .await?;
      let delete = tx
        .prepare("DELETE FROM kv_entries WHERE namespace = $1 AND key = $2")
        .await?;
      for write in writes {
        match write {
          KvWrite::Put { key, entry } => {
            let expiration = entry.expiration.map(sql_time);
            tx.execute(
              &put,
              &[&namespace, &key, &entry.value, &entry.metadata, &expiration],
            )
            .await?;
          }
          KvWrite::Delete { key } => {
            tx.execute(&delete, &[&namespace, &key]).await?;
          }
        }
      }
    })
  }

  fn kv_list(
    &self,
    namespace: String,
    options: KvListOptions,
    now: u64,
  ) -> BoxFuture<'_, StoreResult<KvListPage>> {
    transaction!(self, false, |tx| {
      require_namespace(&tx, &namespace).await?;
      let limit = i64::try_from(options.limit + 1).unwrap_or(i64::MAX);
      // The key column collates "C": byte order, as cursors need.
      let keys = tx
        .query(
          "SELECT key, expiration, metadata FROM kv_entries \
           WHERE namespace = $1 AND starts_with(key, $2) AND key > $3 \
           AND (expiration IS NULL OR expiration > $4) ORDER BY key LIMIT $5",
          &[
            &namespace,
            &options.prefix,
            &options.cursor.clone().unwrap_or_default(),
            &sql_time(now),
            &limit,
          ],
        )
        .await?
        .iter()
        .map(|row| KvListKey {
          name: row.get(0),
          expiration: from_sql_time(row.get(1)),
          metadata: row.get(2),
        })
        .collect();
      page(keys, options.limit)
    })
  }
}
