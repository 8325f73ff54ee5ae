//! The op behind `env.ASSETS.fetch()`.

use std::sync::Arc;

use deno_core::{OpState, ToJsBuffer, op2};
use serde::Serialize;

/// What answers a worker's asset binding.
pub trait AssetFetcher: Send + Sync + std::fmt::Debug {
  /// The answer to `method` on `path` (percent-encoded, as in the URL)
  /// with `query` and the request's `headers`.
  fn fetch(
    &self,
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(String, String)],
  ) -> AssetReply;
}

/// An asset binding's answer.
#[derive(Debug, Clone, Default)]
pub struct AssetReply {
  /// The status.
  pub status: u16,
  /// The headers.
  pub headers: Vec<(String, String)>,
  /// The body.
  pub body: bytes::Bytes,
}

/// The worker's asset binding, put in the isolate's `OpState` at its
/// start.
#[derive(Debug, Clone)]
pub struct AssetsBinding(pub Arc<dyn AssetFetcher>);

/// The answer, for JS.
#[derive(Serialize)]
pub struct FetchedAsset {
  status: u16,
  headers: Vec<(String, String)>,
  body: ToJsBuffer,
}

/// Fetches from the worker's assets; a worker without them gets 404.
#[op2]
#[serde]
pub fn op_assets_fetch(
  state: &mut OpState,
  #[string] method: String,
  #[string] path: String,
  #[string] query: String,
  #[serde] headers: Vec<(String, String)>,
) -> FetchedAsset {
  let query = (!query.is_empty()).then_some(query.as_str());
  let reply = match state.try_borrow::<AssetsBinding>() {
    Some(binding) => binding.0.fetch(&method, &path, query, &headers),
    None => AssetReply {
      status: 404,
      ..AssetReply::default()
    },
  };
  FetchedAsset {
    status: reply.status,
    headers: reply.headers,
    body: reply.body.to_vec().into(),
  }
}
