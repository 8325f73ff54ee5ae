//! [`CronStore`] on the SQLite store.

use futures::future::BoxFuture;
use rusqlite::params;

use super::StoreResult;
use super::crons::{CronStore, FiringKey, FiringRecord, ms, unsigned};
use super::sqlite::SqliteStore;

impl CronStore for SqliteStore {
  fn claim_firing(
    &self,
    key: FiringKey,
    replica: String,
    now_ms: u64,
    lease_until_ms: u64,
  ) -> BoxFuture<'_, StoreResult<bool>> {
    self.transaction(move |tx| {
      let changed = tx.execute(
        "INSERT INTO cron_firings (worker, cron, scheduled_ms, replica, lease_until_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (worker, cron, scheduled_ms) DO UPDATE
           SET replica = excluded.replica, lease_until_ms = excluded.lease_until_ms
           WHERE cron_firings.edge IS NULL AND cron_firings.lease_until_ms < ?6",
        params![
          key.worker,
          key.cron,
          ms(key.scheduled_ms),
          replica,
          ms(lease_until_ms),
          ms(now_ms)
        ],
      )?;
      Ok(changed == 1)
    })
  }

  fn renew_firing(
    &self,
    key: FiringKey,
    replica: String,
    lease_until_ms: u64,
  ) -> BoxFuture<'_, StoreResult<bool>> {
    self.transaction(move |tx| {
      let changed = tx.execute(
        "UPDATE cron_firings SET lease_until_ms = ?5
         WHERE worker = ?1 AND cron = ?2 AND scheduled_ms = ?3 AND replica = ?4 AND edge IS NULL",
        params![
          key.worker,
          key.cron,
          ms(key.scheduled_ms),
          replica,
          ms(lease_until_ms)
        ],
      )?;
      Ok(changed == 1)
    })
  }

  fn release_firing(&self, key: FiringKey, replica: String) -> BoxFuture<'_, StoreResult<()>> {
    self.transaction(move |tx| {
      tx.execute(
        "UPDATE cron_firings SET lease_until_ms = 0
         WHERE worker = ?1 AND cron = ?2 AND scheduled_ms = ?3 AND replica = ?4 AND edge IS NULL",
        params![key.worker, key.cron, ms(key.scheduled_ms), replica],
      )?;
      Ok(())
    })
  }

  fn finish_firing(
    &self,
    key: FiringKey,
    edge: String,
    ok: bool,
    duration_ms: u64,
  ) -> BoxFuture<'_, StoreResult<bool>> {
    self.transaction(move |tx| {
      let changed = tx.execute(
        "UPDATE cron_firings SET edge = ?4, ok = ?5, duration_ms = ?6
         WHERE worker = ?1 AND cron = ?2 AND scheduled_ms = ?3 AND edge IS NULL",
        params![
          key.worker,
          key.cron,
          ms(key.scheduled_ms),
          edge,
          ok,
          ms(duration_ms)
        ],
      )?;
      Ok(changed == 1)
    })
  }

  fn last_firing(&self, worker: String, cron: String) -> BoxFuture<'_, StoreResult<Option<u64>>> {
    self.transaction(move |tx| {
      let last: Option<i64> = tx.query_row(
        "SELECT max(scheduled_ms) FROM cron_firings WHERE worker = ?1 AND cron = ?2",
        params![worker, cron],
        |row| row.get(0),
      )?;
      Ok(last.map(unsigned))
    })
  }

  fn lapsed_firings(
    &self,
    since_ms: u64,
    now_ms: u64,
  ) -> BoxFuture<'_, StoreResult<Vec<FiringKey>>> {
    self.transaction(move |tx| {
      let mut statement = tx.prepare(
        "SELECT worker, cron, scheduled_ms FROM cron_firings
         WHERE edge IS NULL AND scheduled_ms > ?1 AND lease_until_ms < ?2
         ORDER BY scheduled_ms",
      )?;
      let rows = statement.query_map(params![ms(since_ms), ms(now_ms)], |row| {
        Ok(FiringKey {
          worker: row.get(0)?,
          cron: row.get(1)?,
          scheduled_ms: unsigned(row.get(2)?),
        })
      })?;
      Ok(rows.collect::<Result<_, _>>()?)
    })
  }

  fn firings(&self, worker: String, limit: u32) -> BoxFuture<'_, StoreResult<Vec<FiringRecord>>> {
    self.transaction(move |tx| {
      let mut statement = tx.prepare(
        "SELECT worker, cron, scheduled_ms, edge, ok, duration_ms FROM cron_firings
         WHERE worker = ?1 ORDER BY scheduled_ms DESC, cron LIMIT ?2",
      )?;
      let rows = statement.query_map(params![worker, limit], |row| {
        Ok(FiringRecord {
          key: FiringKey {
            worker: row.get(0)?,
            cron: row.get(1)?,
            scheduled_ms: unsigned(row.get(2)?),
          },
          edge: row.get(3)?,
          ok: row.get(4)?,
          duration_ms: row.get::<_, Option<i64>>(5)?.map(unsigned),
        })
      })?;
      Ok(rows.collect::<Result<_, _>>()?)
    })
  }

  fn prune_firings(&self, before_ms: u64) -> BoxFuture<'_, StoreResult<u64>> {
    self.transaction(move |tx| {
      let removed = tx.execute(
        "DELETE FROM cron_firings WHERE scheduled_ms < ?1",
        params![ms(before_ms)],
      )?;
      Ok(removed as u64)
    })
  }
}
