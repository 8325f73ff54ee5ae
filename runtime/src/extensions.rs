//! The one ordered list of extensions. `build.rs` uses it to build the startup
//! snapshot and the runtime uses it to start isolates from that snapshot; the
//! two lists must match op for op, so both come from here.

use std::sync::Arc;

use deno_core::Extension;

use super::ext::{
  assets, cache, fetch, html, kv, node, serve, service, sockets, websocket, worker,
};

/// Every extension, in load order.
pub fn all() -> Vec<Extension> {
  vec![
    deno_webidl::deno_webidl::init(),
    deno_web::deno_web::init(
      Arc::new(deno_web::BlobStore::default()),
      None,
      false,
      deno_web::InMemoryBroadcastChannel::default(),
    ),
    deno_crypto::deno_crypto::init(None),
    deno_fetch::deno_fetch::init(deno_fetch::Options::default()),
    cache::outpost_cache::init(),
    fetch::outpost_fetch::init(),
    html::outpost_html::init(),
    kv::outpost_kv::init(),
    assets::outpost_assets::init(),
    service::outpost_service::init(),
    sockets::outpost_sockets::init(),
    node::outpost_node::init(),
    websocket::outpost_websocket::init(),
    serve::outpost_serve::init(),
    worker::outpost_worker::init(),
  ]
}
