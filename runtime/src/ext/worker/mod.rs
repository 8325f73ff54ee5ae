//! The `worker` area: the global scope a worker sees and the bootstrap that
//! starts it (`js-api/src/worker/`), plus the console sink.

mod ops;

deno_core::extension!(
  outpost_worker,
  deps = [
    deno_webidl,
    deno_web,
    deno_crypto,
    deno_fetch,
    outpost_cache,
    outpost_fetch,
    outpost_html,
    outpost_kv,
    outpost_serve,
    outpost_websocket
  ],
  ops = [ops::op_worker_log],
  esm_entry_point = "ext:outpost_worker/99_main.js",
  esm = [
    dir "../js-api/src",
    "ext:outpost_worker/00_globals.js" = "worker/00_globals.js",
    "ext:outpost_worker/99_main.js" = "worker/99_main.js",
  ],
  lazy_loaded_js = [
    dir "../js-api/src",
    "ext:deno_net/02_tls.js" = "worker/01_deno_net_shim.js",
  ],
);
