//! API tokens: random, shown once, stored only as their sha256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use outpost_protocol::bundle::sha256_hex;

/// Every token starts with this, so a leaked one is easy to recognise.
pub const TOKEN_PREFIX: &str = "opt_";

/// The operating system's random source failed.
#[derive(Debug, thiserror::Error)]
#[error("no randomness from the operating system: {0}")]
pub struct RandomError(String);

/// A new random token: the prefix and 32 random bytes, base64url.
pub fn generate() -> Result<String, RandomError> {
  Ok(format!("{TOKEN_PREFIX}{}", random_text(32)?))
}

/// `bytes` random bytes as base64url text.
pub fn random_text(bytes: usize) -> Result<String, RandomError> {
  let mut buffer = vec![0u8; bytes];
  getrandom::fill(&mut buffer).map_err(|err| RandomError(err.to_string()))?;
  Ok(URL_SAFE_NO_PAD.encode(buffer))
}

/// What the store keeps of a token. The tokens are 256 random bits, so a
/// plain hash is enough: there is nothing to brute-force.
pub fn hash(token: &str) -> String {
  sha256_hex(token.as_bytes())
}
