//! Errors the Cache API ops raise into JS.

/// A failure of a Cache API op. Each variant reaches JS as the class named.
#[derive(Debug, thiserror::Error, deno_error::JsError)]
pub enum CacheError {
  /// The response's `Vary: *` matches no request.
  #[class(type)]
  #[error("Cannot cache a response with 'Vary: *'")]
  VaryStar,
  /// The isolate is not bound to a worker (no cache scope).
  #[class(type)]
  #[error("the Cache API is only available to a worker's handlers")]
  Unbound,
}
