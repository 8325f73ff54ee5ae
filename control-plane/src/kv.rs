//! KV on the control plane: [`StoreKv`], the store as a
//! [`KvBackend`] (what `outpost dev`'s workers and the sync server's KV
//! streams use), and [`KvChange`], the invalidations edges are sent.

use std::sync::Arc;

use outpost_protocol::kv::{
  Clock, KvBackend, KvEntry, KvError, KvFuture, KvListOptions, KvListPage, KvRead, check_key,
  check_metadata, check_value_len,
};
use outpost_protocol::sync::{FrameError, KvReply, KvRequest, read_raw, write_frame, write_raw};

use crate::store::{KvWrite, Store, StoreError};

/// KV keys that changed, for the edges to drop from their caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvChange {
  /// The namespace id.
  pub namespace: String,
  /// The keys; `None` for the whole namespace.
  pub keys: Option<Vec<String>>,
  /// The edge that made the change, which has updated its cache already.
  pub origin: Option<String>,
}

/// A store as a KV backend: every call goes to the store, nothing caches.
#[derive(Clone)]
pub struct StoreKv {
  store: Arc<dyn Store>,
  clock: Clock,
  /// Whether a namespace that does not exist is made on first write, and
  /// reads as empty till then (`outpost dev`).
  create_namespaces: bool,
}

impl std::fmt::Debug for StoreKv {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("StoreKv").finish_non_exhaustive()
  }
}

impl StoreKv {
  /// KV on `store`, with expiry measured by `clock`.
  pub fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
    Self {
      store,
      clock,
      create_namespaces: false,
    }
  }

  /// A local store for `outpost dev` and `outpost edge --local`, where
  /// a binding's namespace is made when first written to.
  pub fn local(store: Arc<dyn Store>) -> Self {
    Self {
      store,
      clock: Clock::system(),
      create_namespaces: true,
    }
  }

  /// Applies `writes`, making the namespace first if this store may.
  async fn write(&self, namespace: String, writes: Vec<KvWrite>) -> Result<(), KvError> {
    match self.store.kv_write(namespace.clone(), writes.clone()).await {
      Err(StoreError::NotFound(_)) if self.create_namespaces => {
        ensure_namespaces(&*self.store, std::slice::from_ref(&namespace))
          .await
          .map_err(kv_error)?;
        self
          .store
          .kv_write(namespace, writes)
          .await
          .map_err(kv_error)
      }
      result => result.map_err(kv_error),
    }
  }

  /// A store error, or what a missing namespace reads as on a local store.
  fn or_empty<T: Default>(&self, result: Result<T, StoreError>) -> Result<T, KvError> {
    match result {
      Err(StoreError::NotFound(_)) if self.create_namespaces => Ok(T::default()),
      result => result.map_err(kv_error),
    }
  }
}

/// A store error as KV reports it.
pub fn kv_error(err: StoreError) -> KvError {
  match err {
    StoreError::NotFound(message) => KvError::NoNamespace(message),
    StoreError::Invalid(message) | StoreError::Conflict(message) => KvError::Storage(message),
    StoreError::Database(message) => KvError::Storage(message),
  }
}

impl KvBackend for StoreKv {
  fn clock(&self) -> &Clock {
    &self.clock
  }

  fn get(&self, namespace: &str, key: &str, _cache_ttl: Option<u64>) -> KvFuture<KvRead> {
    let (this, now) = (self.clone(), self.clock.now());
    let (namespace, key) = (namespace.to_owned(), key.to_owned());
    Box::pin(async move {
      let entry = this.or_empty(this.store.kv_get(namespace, key, now).await)?;
      Ok(KvRead {
        entry,
        cache_status: None,
      })
    })
  }

  fn put(&self, namespace: &str, key: &str, entry: KvEntry) -> KvFuture<()> {
    let this = self.clone();
    let write = KvWrite::Put {
      key: key.to_owned(),
      entry,
    };
    let namespace = namespace.to_owned();
    Box::pin(async move { this.write(namespace, vec![write]).await })
  }

  fn delete(&self, namespace: &str, key: &str) -> KvFuture<()> {
    let this = self.clone();
    let write = KvWrite::Delete {
      key: key.to_owned(),
    };
    let namespace = namespace.to_owned();
    Box::pin(async move { this.write(namespace, vec![write]).await })
  }

  fn list(&self, namespace: &str, options: KvListOptions) -> KvFuture<KvListPage> {
    let (this, now) = (self.clone(), self.clock.now());
    let namespace = namespace.to_owned();
    Box::pin(async move {
      let mut page = this.or_empty(this.store.kv_list(namespace, options, now).await)?;
      if page.keys.is_empty() && page.cursor.is_none() {
        page.list_complete = true;
      }
      Ok(page)
    })
  }
}

/// Makes sure namespaces with these ids exist, titled by their ids (what
/// `outpost dev` does for the bindings in `outpost.toml`).
pub async fn ensure_namespaces(store: &dyn Store, ids: &[String]) -> Result<(), StoreError> {
  let existing = store.kv_namespaces().await?;
  for id in ids {
    if !existing.iter().any(|ns| &ns.id == id) {
      store.create_kv_namespace(id.clone(), id.clone()).await?;
    }
  }
  Ok(())
}

/// Answers one KV stream from edge `node`: reads the request (and a put's
/// value), calls the store, and writes the reply (and a found value).
pub async fn serve_request<W, R>(
  app: &crate::ControlPlane,
  node: &str,
  request: KvRequest,
  send: &mut W,
  recv: &mut R,
) -> Result<(), FrameError>
where
  W: tokio::io::AsyncWrite + Unpin,
  R: tokio::io::AsyncRead + Unpin,
{
  let store = app.store();
  let now = app.clock().now();
  let reply = match request {
    KvRequest::Get { namespace, key } => match store.kv_get(namespace, key, now).await {
      Ok(Some(entry)) => {
        let reply = KvReply::Found {
          metadata: entry.metadata,
          expiration: entry.expiration,
        };
        write_frame(send, &reply).await?;
        return write_raw(send, &entry.value).await;
      }
      Ok(None) => KvReply::NotFound,
      Err(err) => failed(kv_error(err)),
    },
    KvRequest::Put {
      namespace,
      key,
      metadata,
      expiration,
    } => {
      let Some(value) = read_raw(recv).await? else {
        return Ok(());
      };
      // The edge checked already; an edge is not trusted to have.
      let checked = check_key(&key)
        .and_then(|()| check_value_len(value.len()))
        .and_then(|()| metadata.as_deref().map_or(Ok(()), check_metadata));
      match checked {
        Ok(()) => {
          let entry = KvEntry {
            value,
            metadata,
            expiration,
          };
          let write = KvWrite::Put {
            key: key.clone(),
            entry,
          };
          write_and_announce(app, node, namespace, write).await
        }
        Err(err) => failed(err),
      }
    }
    KvRequest::Delete { namespace, key } => match check_key(&key) {
      Ok(()) => write_and_announce(app, node, namespace, KvWrite::Delete { key }).await,
      Err(err) => failed(err),
    },
    KvRequest::List { namespace, options } => match options.check() {
      Ok(()) => match store.kv_list(namespace, options, now).await {
        Ok(page) => KvReply::Page(page),
        Err(err) => failed(kv_error(err)),
      },
      Err(err) => failed(err),
    },
  };
  write_frame(send, &reply).await
}

fn failed(error: KvError) -> KvReply {
  KvReply::Failed { error }
}

async fn write_and_announce(
  app: &crate::ControlPlane,
  node: &str,
  namespace: String,
  write: KvWrite,
) -> KvReply {
  let key = write.key().to_owned();
  match app.store().kv_write(namespace.clone(), vec![write]).await {
    Ok(()) => {
      app.kv_changed(KvChange {
        namespace,
        keys: Some(vec![key]),
        origin: Some(node.to_owned()),
      });
      KvReply::Done
    }
    Err(err) => failed(kv_error(err)),
  }
}

/// One pair of a bulk put, as in wrangler's `kv bulk put` files.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkPair {
  /// The key.
  pub key: String,
  /// The value, as text or (with `base64`) base64.
  pub value: String,
  /// Whether `value` is base64.
  #[serde(default)]
  pub base64: bool,
  /// When it expires, in seconds since the Unix epoch.
  pub expiration: Option<u64>,
  /// How long it lives, in seconds.
  pub expiration_ttl: Option<u64>,
  /// Its metadata.
  pub metadata: Option<serde_json::Value>,
}

/// A bulk put that could not be made: which pair, and why.
#[derive(Debug, thiserror::Error)]
#[error("pair {index} ({key:?}): {why}")]
pub struct BulkError {
  /// The pair's position.
  pub index: usize,
  /// Its key.
  pub key: String,
  /// What is wrong with it.
  pub why: String,
}

/// Checks every pair of a bulk put and makes its writes, expirations
/// measured from `now`; nothing is written if any pair is refused.
pub fn bulk_writes(pairs: Vec<BulkPair>, now: u64) -> Result<Vec<KvWrite>, BulkError> {
  use base64::Engine;
  let mut writes = Vec::with_capacity(pairs.len());
  for (index, pair) in pairs.into_iter().enumerate() {
    let refused = |why: String| BulkError {
      index,
      key: pair.key.clone(),
      why,
    };
    let value = if pair.base64 {
      base64::engine::general_purpose::STANDARD
        .decode(&pair.value)
        .map_err(|e| refused(format!("the value is not base64: {e}")))?
    } else {
      pair.value.clone().into_bytes()
    };
    let metadata = pair.metadata.as_ref().map(|m| m.to_string());
    let entry = outpost_protocol::kv::prepare_put(
      &pair.key,
      value,
      metadata,
      pair.expiration,
      pair.expiration_ttl,
      now,
    )
    .map_err(|e| refused(e.to_string()))?;
    writes.push(KvWrite::Put {
      key: pair.key,
      entry,
    });
  }
  Ok(writes)
}
