//! Errors the outbound fetch ops raise into JS.

use deno_fetch::FetchError;

/// A failure of outbound `fetch()` found before any connection is made. Each
/// variant reaches JS as the class named.
#[derive(Debug, thiserror::Error, deno_error::JsError)]
pub enum OutboundError {
  /// The address policy refuses the URL's address.
  #[class(type)]
  #[error("fetch to {url} refused: {why}")]
  Refused {
    /// The URL asked for, without credentials.
    url: String,
    /// Why, from the policy.
    why: String,
  },
  /// Only http, https, data and blob URLs can be fetched.
  #[class(type)]
  #[error("{0}: URLs cannot be fetched from workers")]
  Scheme(String),
  /// `Deno.createHttpClient` clients are not offered to workers.
  #[class(type)]
  #[error("custom HTTP clients are not available to workers")]
  CustomClient,
  /// deno_fetch refused the request (bad method, header, URL or body).
  #[class(inherit)]
  #[error(transparent)]
  Fetch(Box<FetchError>),
}

impl From<FetchError> for OutboundError {
  fn from(err: FetchError) -> Self {
    Self::Fetch(Box::new(err))
  }
}
