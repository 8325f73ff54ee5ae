//! [`SecretStore`] on the SQLite store.

use futures::future::BoxFuture;
use rusqlite::{OptionalExtension, Transaction, params};

use super::secrets::{SecretStore, SecretsBase, SecretsChanged, choose_base, moved_on};
use super::sqlite::{
  SqliteStore, VERSION_COLUMNS, insert_deployment, insert_version, latest_deployment, version_info,
};
use super::{Share, StoreResult};

fn base(tx: &Transaction<'_>, worker: &str) -> StoreResult<SecretsBase> {
  let active = latest_deployment(tx, worker, i64::MAX)?;
  let newest: Option<i64> = tx
    .query_row(
      "SELECT max(number) FROM versions WHERE worker = ?1",
      params![worker],
      |row| row.get(0),
    )
    .optional()?
    .flatten();
  let (number, deployed) = choose_base(worker, active.as_ref(), newest.map(|n| n as u64))?;
  let version = tx.query_row(
    &format!("{VERSION_COLUMNS} WHERE v.worker = ?1 AND v.number = ?2"),
    params![worker, number as i64],
    version_info,
  )?;
  let sealed = tx.query_row(
    "SELECT secrets FROM versions WHERE worker = ?1 AND number = ?2",
    params![worker, number as i64],
    |row| row.get(0),
  )?;
  Ok(SecretsBase {
    version,
    sealed,
    deployed,
  })
}

impl SecretStore for SqliteStore {
  fn secrets_base(&self, worker: String) -> BoxFuture<'_, StoreResult<SecretsBase>> {
    self.transaction(move |tx| base(tx, &worker))
  }

  fn put_secrets(
    &self,
    worker: String,
    base_number: u64,
    sealed: Option<String>,
  ) -> BoxFuture<'_, StoreResult<SecretsChanged>> {
    self.transaction(move |tx| {
      let from = base(tx, &worker)?;
      if from.version.number != base_number {
        return Err(moved_on(&worker));
      }
      let (number, _) = insert_version(tx, &worker, &from.version.hash, sealed.as_deref())?;
      let version = tx.query_row(
        &format!("{VERSION_COLUMNS} WHERE v.worker = ?1 AND v.number = ?2"),
        params![worker, number],
        version_info,
      )?;
      let deployment = if from.deployed {
        let share = Share {
          version: number as u64,
          percent: 100,
        };
        Some(insert_deployment(tx, &worker, vec![share], None)?)
      } else {
        None
      };
      Ok(SecretsChanged {
        version,
        deployment,
      })
    })
  }

  fn sealed_secrets(
    &self,
    versions: Vec<(String, u64)>,
  ) -> BoxFuture<'_, StoreResult<Vec<Option<String>>>> {
    self.transaction(move |tx| {
      let mut statement =
        tx.prepare("SELECT secrets FROM versions WHERE worker = ?1 AND number = ?2")?;
      let mut sealed = Vec::with_capacity(versions.len());
      for (worker, number) in &versions {
        let found: Option<Option<String>> = statement
          .query_row(params![worker, *number as i64], |row| row.get(0))
          .optional()?;
        sealed.push(found.flatten());
      }
      Ok(sealed)
    })
  }
}
