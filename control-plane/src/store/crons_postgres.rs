//! [`CronStore`] on the PostgreSQL store. Claims need no write lock: the
//! primary key settles a race between replicas.

use futures::future::BoxFuture;

use super::StoreResult;
use super::crons::{CronStore, FiringKey, FiringRecord, ms, unsigned};
use super::postgres::{PostgresStore, transaction};

fn key_of(row: &tokio_postgres::Row) -> FiringKey {
  FiringKey {
    worker: row.get(0),
    cron: row.get(1),
    scheduled_ms: unsigned(row.get(2)),
  }
}

impl CronStore for PostgresStore {
  fn claim_firing(
    &self,
    key: FiringKey,
    replica: String,
    now_ms: u64,
    lease_until_ms: u64,
  ) -> BoxFuture<'_, StoreResult<bool>> {
    transaction!(self, false, |tx| {
      tx.execute(
        "INSERT INTO cron_firings (worker, cron, scheduled_ms, replica, lease_until_ms)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (worker, cron, scheduled_ms) DO UPDATE
           SET replica = excluded.replica, lease_until_ms = excluded.lease_until_ms
           WHERE cron_firings.edge IS NULL AND cron_firings.lease_until_ms < $6",
        &[
          &key.worker,
          &key.cron,
          &ms(key.scheduled_ms),
          &replica,
          &ms(lease_until_ms),
          &ms(now_ms),
        ],
      )
      .await?
        == 1
    })
  }

  fn renew_firing(
    &self,
    key: FiringKey,
    replica: String,
    lease_until_ms: u64,
  ) -> BoxFuture<'_, StoreResult<bool>> {
    transaction!(self, false, |tx| {
      tx.execute(
        "UPDATE cron_firings SET lease_until_ms = $5
         WHERE worker = $1 AND cron = $2 AND scheduled_ms = $3 AND replica = $4 AND edge IS NULL",
        &[
          &key.worker,
          &key.cron,
          &ms(key.scheduled_ms),
          &replica,
          &ms(lease_until_ms),
        ],
      )
      .await?
        == 1
    })
  }

  fn release_firing(&self, key: FiringKey, replica: String) -> BoxFuture<'_, StoreResult<()>> {
    transaction!(self, false, |tx| {
      tx.execute(
        "UPDATE cron_firings SET lease_until_ms = 0
         WHERE worker = $1 AND cron = $2 AND scheduled_ms = $3 AND replica = $4 AND edge IS NULL",
        &[&key.worker, &key.cron, &ms(key.scheduled_ms), &replica],
      )
      .await?;
    })
  }

  fn finish_firing(
    &self,
    key: FiringKey,
    edge: String,
    ok: bool,
    duration_ms: u64,
  ) -> BoxFuture<'_, StoreResult<bool>> {
    transaction!(self, false, |tx| {
      tx.execute(
        "UPDATE cron_firings SET edge = $4, ok = $5, duration_ms = $6
         WHERE worker = $1 AND cron = $2 AND scheduled_ms = $3 AND edge IS NULL",
        &[
          &key.worker,
          &key.cron,
          &ms(key.scheduled_ms),
          &edge,
          &ok,
          &ms(duration_ms),
        ],
      )
      .await?
        == 1
    })
  }

  fn last_firing(&self, worker: String, cron: String) -> BoxFuture<'_, StoreResult<Option<u64>>> {
    transaction!(self, false, |tx| {
      let last: Option<i64> = tx
        .query_one(
          "SELECT max(scheduled_ms) FROM cron_firings WHERE worker = $1 AND cron = $2",
          &[&worker, &cron],
        )
        .await?
        .get(0);
      last.map(unsigned)
    })
  }

  fn lapsed_firings(
    &self,
    since_ms: u64,
    now_ms: u64,
  ) -> BoxFuture<'_, StoreResult<Vec<FiringKey>>> {
    transaction!(self, false, |tx| {
      tx.query(
        "SELECT worker, cron, scheduled_ms FROM cron_firings
         WHERE edge IS NULL AND scheduled_ms > $1 AND lease_until_ms < $2
         ORDER BY scheduled_ms",
        &[&ms(since_ms), &ms(now_ms)],
      )
      .await?
      .iter()
      .map(key_of)
      .collect()
    })
  }

  fn firings(&self, worker: String, limit: u32) -> BoxFuture<'_, StoreResult<Vec<FiringRecord>>> {
    transaction!(self, false, |tx| {
      tx.query(
        "SELECT worker, cron, scheduled_ms, edge, ok, duration_ms FROM cron_firings
         WHERE worker = $1 ORDER BY scheduled_ms DESC, cron LIMIT $2",
        &[&worker, &i64::from(limit)],
      )
      .await?
      .iter()
      .map(|row| FiringRecord {
        key: key_of(row),
        edge: row.get(3),
        ok: row.get(4),
        duration_ms: row.get::<_, Option<i64>>(5).map(unsigned),
      })
      .collect()
    })
  }

  fn prune_firings(&self, before_ms: u64) -> BoxFuture<'_, StoreResult<u64>> {
    transaction!(self, false, |tx| {
      tx.execute(
        "DELETE FROM cron_firings WHERE scheduled_ms < $1",
        &[&ms(before_ms)],
      )
      .await?
    })
  }
}
