//! The `node` area: Node.js built-in modules for workers
//! (`js-api/src/node/`), written on the Web APIs. Their only ops are the
//! synchronous hashes node:crypto needs (`ops.rs`), V8's value serializer
//! for node:v8 (`serdes.rs`) and the worker's own modules as node:fs's
//! read-only `/bundle` (`fs.rs`): nothing here reaches the host's file
//! system, a socket or a process. Each module is registered under its
//! `node:` name; the bundle's resolver (`crate::resolve`) decides which of
//! them a worker may import.

mod bundle_files;
mod dns;
mod error;
mod fs;
mod ops;
mod serdes;

pub use bundle_files::{BundleFiles, ModuleFiles};
pub(crate) use fs::NodeBundle;

deno_core::extension!(
  outpost_node,
  deps = [deno_web, deno_crypto, outpost_fetch, outpost_sockets],
  ops = [
    ops::op_node_hash,
    ops::op_node_hmac,
    ops::op_node_pbkdf2,
    ops::op_node_scrypt,
    serdes::op_node_v8_write_value,
    serdes::op_node_v8_read_value,
    fs::op_node_fs_bundle_stat,
    fs::op_node_fs_bundle_read,
    fs::op_node_fs_bundle_list,
    dns::op_node_dns_lookup
  ],
  esm = [
    dir "../js-api/src",
    "ext:outpost_node/00_encodings.js" = "node/00_encodings.js",
    "ext:outpost_node/01_deep_equal.js" = "node/01_deep_equal.js",
    "ext:outpost_node/02_bindings.js" = "node/02_bindings.js",
    "node:events" = "node/10_events.js",
    "node:async_hooks" = "node/20_async_hooks.js",
    "node:diagnostics_channel" = "node/30_diagnostics_channel.js",
    "node:buffer" = "node/40_buffer.js",
    "node:string_decoder" = "node/50_string_decoder.js",
    "node:path" = "node/60_path.js",
    "node:util" = "node/70_util.js",
    "node:assert" = "node/80_assert.js",
    "node:assert/strict" = "node/81_assert_strict.js",
    "node:process" = "node/90_process.js",
    "node:url" = "node/91_url.js",
    "node:timers" = "node/92_timers.js",
    "node:timers/promises" = "node/93_timers_promises.js",
    "node:v8" = "node/94_v8.js",
    "node:crypto" = "node/95_crypto.js",
    "node:stream" = "node/96_stream.js",
    "node:stream/promises" = "node/97_stream_promises.js",
    "node:stream/consumers" = "node/98_stream_consumers.js",
    "node:stream/web" = "node/99_stream_web.js",
    "ext:outpost_node/100_http_client.js" = "node/100_http_client.js",
    "node:http" = "node/101_http.js",
    "node:https" = "node/102_https.js",
    "node:zlib" = "node/103_zlib.js",
    "ext:outpost_node/105_fs_tree.js" = "node/105_fs_tree.js",
    "ext:outpost_node/106_fs_streams.js" = "node/106_fs_streams.js",
    "ext:outpost_node/107_fs.js" = "node/107_fs.js",
    "node:fs/promises" = "node/108_fs_promises.js",
    "node:fs" = "node/109_fs.js",
    "node:constants" = "node/110_constants.js",
    "node:net" = "node/111_net.js",
    "node:dns" = "node/113_dns.js",
    "node:dns/promises" = "node/114_dns_promises.js",
    "node:module" = "node/115_module.js",

  ],
);

/// The `node:` modules the extension registers, for the resolver.
pub const MODULES: [&str; 29] = [
  "node:events",
  "node:async_hooks",
  "node:diagnostics_channel",
  "node:buffer",
  "node:string_decoder",
  "node:path",
  "node:util",
  "node:assert",
  "node:assert/strict",
  "node:process",
  "node:url",
  "node:timers",
  "node:timers/promises",
  "node:crypto",
  "node:stream",
  "node:stream/promises",
  "node:stream/consumers",
  "node:stream/web",
  "node:http",
  "node:https",
  "node:module",
  "node:v8",
  "node:zlib",
  "node:fs",
  "node:fs/promises",
  "node:constants",
  "node:net",
  "node:dns",
  "node:dns/promises",
];
