//! The `fetch` area: outbound `fetch()` under the worker's address policy
//! and subrequest limit.
//!
//! deno_fetch's JS does the Fetch standard's work (redirects, bodies,
//! abort). Its `op_fetch`, called once per hop, is swapped by this
//! extension's op middleware for [`ops::op_fetch_checked`], which checks the
//! address policy ([`policy`]), sends through a per-isolate client whose
//! resolver checks every resolved address ([`client`]), and times out.
//! The JS (`js-api/src/fetch/`) counts subrequests per incoming request.

pub(crate) mod client;
mod error;
mod ops;
pub mod policy;

use deno_core::OpDecl;

pub use ops::OutboundConfig;
pub(crate) use ops::config as outbound_config;
pub use policy::{OutboundPolicy, PolicyError};

/// Replaces deno_fetch's `op_fetch` with Outpost's checked version; the two
/// take the same arguments and return the same result.
fn swap_fetch_op(op: OpDecl) -> OpDecl {
  if op.name == "op_fetch" {
    op.with_implementation_from(&ops::op_fetch_checked())
  } else {
    op
  }
}

deno_core::extension!(
  outpost_fetch,
  deps = [deno_web, deno_fetch],
  ops = [ops::op_fetch_subrequest_limit],
  esm = [
    dir "../js-api/src",
    "ext:outpost_fetch/10_outbound.js" = "fetch/10_outbound.js",
  ],
  lazy_loaded_js = [
    dir "../js-api/src",
    "ext:deno_telemetry/telemetry.ts" = "fetch/00_telemetry_shim.js",
    "ext:deno_telemetry/util.ts" = "fetch/00_telemetry_shim.js",
  ],
  middleware = swap_fetch_op,
);
