//! The `kv` area: Workers KV bindings (`env.MY_KV.get(key)`).
//!
//! A binding is a [`KvNamespace`]: a namespace id and the
//! [`KvBackend`](outpost_protocol::KvBackend) that serves it, which the
//! embedder chooses (the edge node's cache in front of the control plane,
//! or `outpost dev`'s local store). The JS (`js-api/src/kv/10_kv.js`)
//! converts arguments and reads streams whole; [`ops`] checks keys, values,
//! metadata and expiry before anything reaches the backend.

mod error;
mod ops;

pub(crate) use ops::KvBindings;
pub use ops::KvNamespace;

deno_core::extension!(
  outpost_kv,
  deps = [deno_web, deno_fetch],
  ops = [ops::op_kv_get, ops::op_kv_put, ops::op_kv_delete, ops::op_kv_list],
  esm = [
    dir "../js-api/src",
    "ext:outpost_kv/10_kv.js" = "kv/10_kv.js",
  ],
);
