//! Errors the WebSocket ops raise into JS.

/// A failure of a WebSocket op. Each variant reaches JS as the class named.
#[derive(Debug, thiserror::Error, deno_error::JsError)]
pub enum WebSocketError {
  /// The socket has closed, or its id is unknown.
  #[class(type)]
  #[error("the WebSocket is closed")]
  Closed,
  /// The client end was already given to a response, or never was a
  /// `WebSocketPair`'s.
  #[class(type)]
  #[error("this WebSocket is not the unused client end of a WebSocketPair")]
  PeerUsed,
  /// Too many bytes wait for a peer that does not read.
  #[class(type)]
  #[error("the WebSocket's send buffer is full ({0} MiB wait for the peer to read)")]
  BufferFull(usize),
  /// The URL is not one a WebSocket can connect to.
  #[class(syntax)]
  #[error("invalid WebSocket URL: {0}")]
  BadUrl(String),
  /// The address policy refuses the URL's address.
  #[class(type)]
  #[error("WebSocket to {url} refused: {why}")]
  Refused {
    /// The URL asked for.
    url: String,
    /// Why, from the policy.
    why: String,
  },
  /// Connecting, or the opening handshake, failed.
  #[class(type)]
  #[error("WebSocket connection failed: {0}")]
  Connect(String),
}
