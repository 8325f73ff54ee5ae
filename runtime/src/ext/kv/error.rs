//! Errors the KV ops raise into JS.

use outpost_protocol::KvError;

/// A failure of a KV op. Each variant reaches JS as the class named.
#[derive(Debug, thiserror::Error, deno_error::JsError)]
pub enum KvOpError {
  /// A key, metadata or option of the wrong shape.
  #[class(type)]
  #[error("{0}")]
  Type(KvError),
  /// A value, metadata, expiration or list limit out of range.
  #[class(range)]
  #[error("{0}")]
  Range(KvError),
  /// The namespace is not bound to this worker.
  #[class(type)]
  #[error("KV namespace {0:?} is not bound to this worker")]
  Unbound(String),
  /// The backend could not answer (the control plane unreachable, say).
  #[class(generic)]
  #[error("{0}")]
  Backend(KvError),
}

impl From<KvError> for KvOpError {
  fn from(err: KvError) -> Self {
    match err {
      KvError::InvalidKey(_) | KvError::InvalidMetadata(_) => KvOpError::Type(err),
      KvError::ValueTooLarge(_)
      | KvError::MetadataTooLarge(_)
      | KvError::InvalidExpiration(_)
      | KvError::InvalidList(_) => KvOpError::Range(err),
      KvError::NoNamespace(_) | KvError::Unavailable(_) | KvError::Storage(_) => {
        KvOpError::Backend(err)
      }
    }
  }
}
