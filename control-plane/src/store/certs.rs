//! TLS certificates the control plane pushes to edges, part of every
//! [`Store`](super::Store): a certificate chain per host, with its private
//! key sealed (`crate::secrets`) so the database never holds it in the
//! clear. Every change bumps the epoch, as deployments do, so edges pick
//! certificates up with the state.

use futures::future::BoxFuture;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::postgres::{PostgresStore, transaction};
use super::sqlite::SqliteStore;
use super::{StoreResult, now};

/// A stored certificate: the key stays sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCertificate {
  /// The host name it serves (`api.example.com`, `*.example.com`).
  pub host: String,
  /// The certificate chain, PEM, leaf first.
  pub cert_pem: String,
  /// The private key, sealed.
  #[serde(skip)]
  pub key_sealed: String,
  /// When it was stored, in seconds since the Unix epoch.
  pub created_at: i64,
}

/// Certificates by host. Each write returns the new epoch.
pub trait CertStore: Send + Sync + 'static {
  /// Stores (or replaces) the certificate for `host`.
  fn put_certificate(
    &self,
    host: String,
    cert_pem: String,
    key_sealed: String,
  ) -> BoxFuture<'_, StoreResult<u64>>;
  /// Removes the certificate for `host`; `None` if there was none.
  fn delete_certificate(&self, host: String) -> BoxFuture<'_, StoreResult<Option<u64>>>;
  /// Every certificate, by host.
  fn certificates(&self) -> BoxFuture<'_, StoreResult<Vec<StoredCertificate>>>;
}

impl CertStore for SqliteStore {
  fn put_certificate(
    &self,
    host: String,
    cert_pem: String,
    key_sealed: String,
  ) -> BoxFuture<'_, StoreResult<u64>> {
    self.transaction(move |tx| {
      tx.execute(
        "INSERT INTO certificates (host, cert_pem, key_sealed, created_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (host) DO UPDATE SET cert_pem = excluded.cert_pem, \
         key_sealed = excluded.key_sealed, created_at = excluded.created_at",
        params![host, cert_pem, key_sealed, now()],
      )?;
      super::sqlite::record_change(tx, "certificate", &host)
    })
  }

  fn delete_certificate(&self, host: String) -> BoxFuture<'_, StoreResult<Option<u64>>> {
    self.transaction(move |tx| {
      let found = tx
        .query_row(
          "DELETE FROM certificates WHERE host = ?1 RETURNING host",
          params![host],
          |_| Ok(()),
        )
        .optional()?;
      match found {
        Some(()) => Ok(Some(super::sqlite::record_change(
          tx,
          "certificate",
          &host,
        )?)),
        None => Ok(None),
      }
    })
  }

  fn certificates(&self) -> BoxFuture<'_, StoreResult<Vec<StoredCertificate>>> {
    self.transaction(|tx| {
      let mut statement = tx
        .prepare("SELECT host, cert_pem, key_sealed, created_at FROM certificates ORDER BY host")?;
      let rows = statement.query_map([], |row| {
        Ok(StoredCertificate {
          host: row.get(0)?,
          cert_pem: row.get(1)?,
          key_sealed: row.get(2)?,
          created_at: row.get(3)?,
        })
      })?;
      Ok(rows.collect::<Result<_, _>>()?)
    })
  }
}

impl CertStore for PostgresStore {
  fn put_certificate(
    &self,
    host: String,
    cert_pem: String,
    key_sealed: String,
  ) -> BoxFuture<'_, StoreResult<u64>> {
    transaction!(self, true, |tx| {
      tx.execute(
        "INSERT INTO certificates (host, cert_pem, key_sealed, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (host) DO UPDATE SET cert_pem = excluded.cert_pem, \
         key_sealed = excluded.key_sealed, created_at = excluded.created_at",
        &[&host, &cert_pem, &key_sealed, &now()],
      )
      .await?;
      super::postgres::record_change(&tx, "certificate", &host).await?
    })
  }

  fn delete_certificate(&self, host: String) -> BoxFuture<'_, StoreResult<Option<u64>>> {
    transaction!(self, true, |tx| {
      let deleted = tx
        .execute("DELETE FROM certificates WHERE host = $1", &[&host])
        .await?;
      if deleted == 0 {
        None
      } else {
        Some(super::postgres::record_change(&tx, "certificate", &host).await?)
      }
    })
  }

  fn certificates(&self) -> BoxFuture<'_, StoreResult<Vec<StoredCertificate>>> {
    transaction!(self, false, |tx| {
      tx.query(
        "SELECT host, cert_pem, key_sealed, created_at FROM certificates ORDER BY host",
        &[],
      )
      .await?
      .iter()
      .map(|row| StoredCertificate {
        host: row.get(0),
        cert_pem: row.get(1),
        key_sealed: row.get(2),
        created_at: row.get(3),
      })
      .collect()
    })
  }
}
