//! The `html` area: Cloudflare's `HTMLRewriter`, on lol_html.
//!
//! `js-api/src/html/10_html_rewriter.js` is the API: it records each
//! handler's changes to the unit it is given. [`session`] runs lol_html on
//! a blocking-pool thread per transform and applies those changes; [`ops`]
//! connect the two.

mod error;
mod ops;
mod session;

deno_core::extension!(
  outpost_html,
  deps = [deno_web, deno_fetch],
  ops = [
    ops::op_html_rewriter_check_selector,
    ops::op_html_rewriter_start,
    ops::op_html_rewriter_write,
    ops::op_html_rewriter_end,
    ops::op_html_rewriter_next,
    ops::op_html_rewriter_reply,
  ],
  esm = [
    dir "../js-api/src",
    "ext:outpost_html/10_html_rewriter.js" = "html/10_html_rewriter.js",
  ],
);
