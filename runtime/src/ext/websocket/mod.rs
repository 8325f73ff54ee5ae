//! The `websocket` area: `WebSocketPair` for upgrades a worker accepts, and
//! outbound `new WebSocket(url)`.
//!
//! A worker's WebSocket is a pair of channels ([`link`]). For a pair, the
//! client end goes to the host in a 101 response
//! (`op_serve_respond_websocket`), and the edge pumps the upgraded
//! connection into it; an outbound socket is pumped on the isolate's
//! thread. The JS is `js-api/src/websocket/10_websocket.js`.

mod error;
pub mod link;
mod ops;

pub use error::WebSocketError;
pub use link::{WebSocketLink, WsMessage, pump};
pub use ops::take_peer;

deno_core::extension!(
  outpost_websocket,
  deps = [deno_web, deno_fetch, outpost_fetch],
  ops = [
    ops::op_websocket_pair,
    ops::op_websocket_send_text,
    ops::op_websocket_send_binary,
    ops::op_websocket_buffered,
    ops::op_websocket_close,
    ops::op_websocket_next,
    ops::op_websocket_connect,
  ],
  esm = [
    dir "../js-api/src",
    "ext:outpost_websocket/10_websocket.js" = "websocket/10_websocket.js",
  ],
);
