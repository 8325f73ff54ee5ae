//! The API's one error type: JSON `{"error": {"code", "message"}}` with
//! the status that goes with the code.

use http::StatusCode;

use crate::store::StoreError;

/// An API error: a status, a stable machine-readable code and a message
/// for people.
#[derive(Debug)]
pub struct ApiError {
  /// The HTTP status.
  pub status: StatusCode,
  /// A stable code (`unauthorized`, `not_found`, ...).
  pub code: &'static str,
  /// What went wrong, for people.
  pub message: String,
}

impl ApiError {
  pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
    Self {
      status,
      code,
      message: message.into(),
    }
  }

  pub(crate) fn bad_request(message: impl Into<String>) -> Self {
    Self::new(StatusCode::BAD_REQUEST, "invalid", message)
  }

  pub(crate) fn not_found(message: impl Into<String>) -> Self {
    Self::new(StatusCode::NOT_FOUND, "not_found", message)
  }

  /// The JSON body.
  pub fn body(&self) -> serde_json::Value {
    serde_json::json!({ "error": { "code": self.code, "message": self.message } })
  }
}

impl From<StoreError> for ApiError {
  fn from(err: StoreError) -> Self {
    match err {
      StoreError::NotFound(message) => ApiError::not_found(message),
      StoreError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
      StoreError::Invalid(message) => ApiError::bad_request(message),
      StoreError::Database(message) => {
        tracing::error!(%message, "store failed");
        ApiError::new(
          StatusCode::INTERNAL_SERVER_ERROR,
          "internal",
          "the store failed; see the control plane's log",
        )
      }
    }
  }
}

impl From<outpost_protocol::BundleError> for ApiError {
  fn from(err: outpost_protocol::BundleError) -> Self {
    match err {
      outpost_protocol::BundleError::TooLarge(_) => {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", err.to_string())
      }
      _ => ApiError::new(StatusCode::BAD_REQUEST, "bad_bundle", err.to_string()),
    }
  }
}
