//! Errors the socket ops raise into JS.

/// A failure of a socket op. Each variant reaches JS as the class named.
#[derive(Debug, thiserror::Error, deno_error::JsError)]
pub enum SocketError {
  /// The address is not one a socket can connect to.
  #[class(type)]
  #[error("invalid address {0:?}: give a host name or an IP address and a port from 1 to 65535")]
  BadAddress(String),
  /// The address policy refuses the address.
  #[class(type)]
  #[error("connect() to {address} refused: {why}")]
  Refused {
    /// The address asked for.
    address: String,
    /// Why, from the policy.
    why: String,
  },
  /// Connecting, or the TLS handshake, failed.
  #[class(generic)]
  #[error("connect() to {address} failed: {why}")]
  Connect {
    /// The address asked for.
    address: String,
    /// What went wrong.
    why: String,
  },
  /// The socket was closed, upgraded by startTls(), or never existed.
  #[class(generic)]
  #[error("the socket is closed")]
  Closed,
  /// startTls() on a socket that is not plain TCP.
  #[class(type)]
  #[error(
    "startTls() needs a socket opened with secureTransport \"starttls\" and not upgraded yet"
  )]
  NotUpgradable,
  /// Reading or writing failed.
  #[class(generic)]
  #[error("{0}")]
  Io(#[from] std::io::Error),
}
