//! The ops behind KV bindings: get, put, delete and list on the backend of
//! a namespace bound to the calling worker.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use deno_core::{JsBuffer, OpState, ToJsBuffer, op2};
use outpost_protocol::kv::{self, CacheStatus, KvBackend, KvListOptions, KvListPage, check_key};
use serde::{Deserialize, Serialize};

use super::error::KvOpError;

/// A KV namespace bound into a worker's `env`: its id and what serves it.
#[derive(Debug, Clone)]
pub struct KvNamespace {
  /// The namespace's id.
  pub id: String,
  /// Where its keys live.
  pub backend: Arc<dyn KvBackend>,
}

/// The namespaces the isolate's worker may reach, by id; the worker's start
/// puts them in the isolate's `OpState`.
#[derive(Debug, Default)]
pub(crate) struct KvBindings(pub(crate) HashMap<String, Arc<dyn KvBackend>>);

fn backend(state: &Rc<RefCell<OpState>>, namespace: &str) -> Result<Arc<dyn KvBackend>, KvOpError> {
  state
    .borrow()
    .try_borrow::<KvBindings>()
    .and_then(|bindings| bindings.0.get(namespace).cloned())
    .ok_or_else(|| KvOpError::Unbound(namespace.to_owned()))
}

/// A value read, for JS.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KvValue {
  value: ToJsBuffer,
  metadata: Option<String>,
  expiration: Option<u64>,
  cache_status: Option<CacheStatus>,
}

/// Reads a key; `None` if it does not exist or has expired.
#[op2]
#[serde]
pub async fn op_kv_get(
  state: Rc<RefCell<OpState>>,
  #[string] namespace: String,
  #[string] key: String,
  #[serde] cache_ttl: Option<u64>,
) -> Result<Option<KvValue>, KvOpError> {
  check_key(&key)?;
  let backend = backend(&state, &namespace)?;
  let read = backend.get(&namespace, &key, cache_ttl).await?;
  Ok(read.entry.map(|entry| KvValue {
    value: entry.value.into(),
    metadata: entry.metadata,
    expiration: entry.expiration,
    cache_status: read.cache_status,
  }))
}

/// A put's options, as JS passes them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutOptions {
  expiration: Option<u64>,
  expiration_ttl: Option<u64>,
  /// The metadata, already serialised.
  metadata: Option<String>,
}

/// Writes a key, after checking everything about it.
#[op2]
pub async fn op_kv_put(
  state: Rc<RefCell<OpState>>,
  #[string] namespace: String,
  #[string] key: String,
  #[buffer] value: JsBuffer,
  #[serde] options: PutOptions,
) -> Result<(), KvOpError> {
  let backend = backend(&state, &namespace)?;
  let entry = kv::prepare_put(
    &key,
    value.to_vec(),
    options.metadata,
    options.expiration,
    options.expiration_ttl,
    backend.clock().now(),
  )?;
  Ok(backend.put(&namespace, &key, entry).await?)
}

/// Deletes a key.
#[op2]
pub async fn op_kv_delete(
  state: Rc<RefCell<OpState>>,
  #[string] namespace: String,
  #[string] key: String,
) -> Result<(), KvOpError> {
  check_key(&key)?;
  let backend = backend(&state, &namespace)?;
  Ok(backend.delete(&namespace, &key).await?)
}

/// Lists keys in order, a page at a time.
#[op2]
#[serde]
pub async fn op_kv_list(
  state: Rc<RefCell<OpState>>,
  #[string] namespace: String,
  #[serde] options: KvListOptions,
) -> Result<KvListPage, KvOpError> {
  options.check()?;
  let backend = backend(&state, &namespace)?;
  Ok(backend.list(&namespace, options).await?)
}
