//! Errors the serve ops raise into JS.

/// A failure in the `serve` ops. Each variant reaches JS as the class named.
#[derive(Debug, thiserror::Error, deno_error::JsError)]
pub enum ServeError {
  /// The request id is unknown, or its response was already sent.
  #[class(type)]
  #[error("the request has already been answered or no longer exists")]
  RequestGone,
  /// The response body was written to after it was closed, or before the
  /// head was sent.
  #[class(type)]
  #[error("the response body is not open for writing")]
  BodyNotOpen,
  /// Reading the request body failed (too large, or the client aborted).
  #[class(type)]
  #[error("reading the request body failed: {0}")]
  RequestBody(#[from] super::types::BodyError),
  /// A status code outside 200..=599 (1xx are not allowed from workers).
  #[class(range)]
  #[error("invalid response status {0}")]
  InvalidStatus(u16),
  /// A header name or value that HTTP cannot carry.
  #[class(type)]
  #[error("invalid response header: {0}")]
  InvalidHeader(String),
  /// The WebSocket of a 101 response cannot be used.
  #[class(inherit)]
  #[error(transparent)]
  WebSocket(#[from] crate::ext::websocket::WebSocketError),
  /// A request head too large for a V8 string; hyper's limits keep heads
  /// far below this.
  #[class(range)]
  #[error("the request head is too large to hand to JS")]
  HeadTooLarge,
}
