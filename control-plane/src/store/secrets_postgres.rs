//! [`SecretStore`] on the PostgreSQL store. Changes take the write lock,
//! as deployments do.

use futures::future::BoxFuture;
use tokio_postgres::Transaction;

use super::postgres::{
  PostgresStore, VERSION_COLUMNS, insert_deployment, insert_version, latest_deployment,
  transaction, version_info,
};
use super::secrets::{SecretStore, SecretsBase, SecretsChanged, choose_base, moved_on};
use super::{Share, StoreResult};

async fn base(tx: &Transaction<'_>, worker: &str) -> StoreResult<SecretsBase> {
  let active = latest_deployment(tx, worker, i64::MAX).await?;
  let newest: Option<i64> = tx
    .query_one(
      "SELECT max(number) FROM versions WHERE worker = $1",
      &[&worker],
    )
    .await?
    .get(0);
  let (number, deployed) = choose_base(worker, active.as_ref(), newest.map(|n| n as u64))?;
  let number = number as i64;
  let row = tx
    .query_one(
      &format!("{VERSION_COLUMNS} WHERE v.worker = $1 AND v.number = $2"),
      &[&worker, &number],
    )
    .await?;
  let sealed: Option<String> = tx
    .query_one(
      "SELECT secrets FROM versions WHERE worker = $1 AND number = $2",
      &[&worker, &number],
    )
    .await?
    .get(0);
  Ok(SecretsBase {
    version: version_info(&row),
    sealed,
    deployed,
  })
}

impl SecretStore for PostgresStore {
  fn secrets_base(&self, worker: String) -> BoxFuture<'_, StoreResult<SecretsBase>> {
    transaction!(self, false, |tx| base(&tx, &worker).await?)
  }

  fn put_secrets(
    &self,
    worker: String,
    base_number: u64,
    sealed: Option<String>,
  ) -> BoxFuture<'_, StoreResult<SecretsChanged>> {
    transaction!(self, true, |tx| {
      let from = base(&tx, &worker).await?;
      if from.version.number != base_number {
        return Err(moved_on(&worker));
      }
      let (number, _) = insert_version(&tx, &worker, &from.version.hash, sealed.as_deref()).await?;
      let row = tx
        .query_one(
          &format!("{VERSION_COLUMNS} WHERE v.worker = $1 AND v.number = $2"),
          &[&worker, &number],
        )
        .await?;
      let deployment = if from.deployed {
        let share = Share {
          version: number as u64,
          percent: 100,
        };
        Some(insert_deployment(&tx, &worker, vec![share], None).await?)
      } else {
        None
      };
      SecretsChanged {
        version: version_info(&row),
        deployment,
      }
    })
  }

  fn sealed_secrets(
    &self,
    versions: Vec<(String, u64)>,
  ) -> BoxFuture<'_, StoreResult<Vec<Option<String>>>> {
    transaction!(self, false, |tx| {
      let mut sealed = Vec::with_capacity(versions.len());
      for (worker, number) in &versions {
        let found = tx
          .query_opt(
            "SELECT secrets FROM versions WHERE worker = $1 AND number = $2",
            &[worker, &(*number as i64)],
          )
          .await?;
        sealed.push(found.and_then(|row| row.get(0)));
      }
      sealed
    })
  }
}
