//! The `node` area: Node.js built-in modules for workers that use
//! `nodejs_compat` (`js-api/src/node/`), written on the Web APIs, with no
//! ops of their own: nothing here reaches a file system, a socket or a
//! process. Each module is registered under its `node:` name; the bundle's
//! resolver (`crate::resolve`) decides which of them a worker may import.

deno_core::extension!(
  outpost_node,
  deps = [deno_web, outpost_fetch],
  esm = [
    dir "../js-api/src",
    "node:events" = "node/10_events.js",
    "node:async_hooks" = "node/20_async_hooks.js",
    "node:diagnostics_channel" = "node/30_diagnostics_channel.js",
  ],
);
