//! The `assets` area: `env.ASSETS.fetch()`, a worker's way to its own
//! static assets (`[assets] binding`).
//!
//! What serves them is the embedder's ([`AssetFetcher`]): the edge node's
//! asset site, from a project folder or its disk cache. The JS
//! (`js-api/src/assets/10_assets.js`) turns the request into plain parts
//! and the answer back into a `Response`.

mod ops;

pub use ops::{AssetFetcher, AssetReply, AssetsBinding};

deno_core::extension!(
  outpost_assets,
  deps = [deno_web, deno_fetch],
  ops = [ops::op_assets_fetch],
  esm = [
    dir "../js-api/src",
    "ext:outpost_assets/10_assets.js" = "assets/10_assets.js",
  ],
);
