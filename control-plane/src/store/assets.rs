//! Static assets' bytes in the store, once per sha256: a version's
//! manifest names them, and an upload sends only the ones missing.

use futures::future::BoxFuture;
use rusqlite::{OptionalExtension, params};

use super::StoreResult;
use super::postgres::{PostgresStore, transaction};
use super::sqlite::SqliteStore;

/// Where asset bytes are kept.
pub trait AssetStore {
  /// Which of `hashes` the store lacks, in their order.
  fn missing_assets(&self, hashes: Vec<String>) -> BoxFuture<'_, StoreResult<Vec<String>>>;
  /// Stores `bytes` (already checked to hash to `hash`); false if they
  /// were stored already.
  fn put_asset(&self, hash: String, bytes: Vec<u8>) -> BoxFuture<'_, StoreResult<bool>>;
  /// An asset's bytes by hash.
  fn asset(&self, hash: String) -> BoxFuture<'_, StoreResult<Option<Vec<u8>>>>;
}

impl AssetStore for SqliteStore {
  fn missing_assets(&self, hashes: Vec<String>) -> BoxFuture<'_, StoreResult<Vec<String>>> {
    self.transaction(move |tx| {
      let mut statement = tx.prepare("SELECT 1 FROM assets WHERE hash = ?1")?;
      let mut missing = Vec::new();
      for hash in hashes {
        if !statement.exists(params![hash])? {
          missing.push(hash);
        }
      }
      Ok(missing)
    })
  }

  fn put_asset(&self, hash: String, bytes: Vec<u8>) -> BoxFuture<'_, StoreResult<bool>> {
    self.transaction(move |tx| {
      let size = bytes.len() as i64;
      let added = tx.execute(
        "INSERT INTO assets (hash, bytes, size) VALUES (?1, ?2, ?3) ON CONFLICT (hash) DO NOTHING",
        params![hash, bytes, size],
      )?;
      Ok(added == 1)
    })
  }

  fn asset(&self, hash: String) -> BoxFuture<'_, StoreResult<Option<Vec<u8>>>> {
    self.transaction(move |tx| {
      Ok(
        tx.query_row(
          "SELECT bytes FROM assets WHERE hash = ?1",
          params![hash],
          |row| row.get(0),
        )
        .optional()?,
      )
    })
  }
}

impl AssetStore for PostgresStore {
  fn missing_assets(&self, hashes: Vec<String>) -> BoxFuture<'_, StoreResult<Vec<String>>> {
    transaction!(self, false, |tx| {
      let present: std::collections::HashSet<String> = tx
        .query("SELECT hash FROM assets WHERE hash = ANY($1)", &[&hashes])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
      hashes
        .into_iter()
        .filter(|hash| !present.contains(hash))
        .collect::<Vec<_>>()
    })
  }

  fn put_asset(&self, hash: String, bytes: Vec<u8>) -> BoxFuture<'_, StoreResult<bool>> {
    transaction!(self, false, |tx| {
      let size = bytes.len() as i64;
      tx.execute(
        "INSERT INTO assets (hash, bytes, size) VALUES ($1, $2, $3) ON CONFLICT (hash) DO NOTHING",
        &[&hash, &bytes, &size],
      )
      .await?
        == 1
    })
  }

  fn asset(&self, hash: String) -> BoxFuture<'_, StoreResult<Option<Vec<u8>>>> {
    transaction!(self, false, |tx| {
      tx.query_opt("SELECT bytes FROM assets WHERE hash = $1", &[&hash])
        .await?
        .map(|row| row.get::<_, Vec<u8>>(0))
    })
  }
}
