//! Errors the node ops raise into JS.

/// A failure of a node op. Each variant reaches JS as the class named.
#[derive(Debug, thiserror::Error, deno_error::JsError)]
pub enum NodeError {
  /// A digest algorithm node:crypto does not offer.
  #[class(type)]
  #[error("Digest method not supported: {0}")]
  UnknownDigest(String),
  /// A key derivation asked for an impossible length or count.
  #[class(range)]
  #[error("{0}")]
  Range(&'static str),
  /// A value node:v8 could not serialize or deserialize.
  #[class(generic)]
  #[error("{0}")]
  Serdes(&'static str),
  /// A name that does not resolve.
  #[class(generic)]
  #[property("code" = "ENOTFOUND")]
  #[error("getaddrinfo ENOTFOUND {0}")]
  DnsNotFound(String),
  /// A name whose addresses the outbound policy refuses.
  #[class(generic)]
  #[property("code" = "EREFUSED")]
  #[error("{0}")]
  DnsRefused(String),
}
