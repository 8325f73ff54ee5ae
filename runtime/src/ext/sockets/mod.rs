//! The `sockets` area: `connect()` of `cloudflare:sockets`, outbound TCP
//! (and TLS) for database and cache drivers.
//!
//! A socket is one resource holding the two halves of a connection
//! (`ops.rs`); the JS (`js-api/src/sockets/10_sockets.js`) builds the
//! Socket's readable and writable streams on its read, write and shutdown
//! ops. Connecting follows the same address policy and timeout as fetch
//! (`crate::ext::fetch`); the JS counts each connection as a subrequest and
//! holds at most a few open per request.

mod error;
mod ops;

deno_core::extension!(
  outpost_sockets,
  deps = [deno_web, outpost_fetch],
  ops = [
    ops::op_sockets_connect,
    ops::op_sockets_read,
    ops::op_sockets_write,
    ops::op_sockets_shutdown,
    ops::op_sockets_start_tls,
  ],
  esm = [
    dir "../js-api/src",
    "node:outpost/cloudflare-sockets" = "sockets/10_sockets.js",
  ],
);
