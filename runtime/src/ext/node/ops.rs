//! `op_node_*`: the synchronous hashing node:crypto needs (Web Crypto's
//! digest is asynchronous), on aws-lc-rs, and MD5 from the md-5 crate.

use aws_lc_rs::{digest, hmac, pbkdf2};
use deno_core::op2;
use md5::Digest;

use super::error::NodeError;

/// The digest named as node:crypto names them.
fn algorithm(name: &str) -> Option<&'static digest::Algorithm> {
  Some(match name.to_ascii_lowercase().as_str() {
    "sha1" | "sha-1" => &digest::SHA1_FOR_LEGACY_USE_ONLY,
    "sha224" | "sha-224" => &digest::SHA224,
    "sha256" | "sha-256" => &digest::SHA256,
    "sha384" | "sha-384" => &digest::SHA384,
    "sha512" | "sha-512" => &digest::SHA512,
    "sha512-256" => &digest::SHA512_256,
    _ => return None,
  })
}

/// The digest of `data` with `name` (md5, sha1, sha256, ...).
#[op2]
#[buffer]
pub fn op_node_hash(#[string] name: &str, #[buffer] data: &[u8]) -> Result<Vec<u8>, NodeError> {
  if name.eq_ignore_ascii_case("md5") {
    return Ok(md5::Md5::digest(data).to_vec());
  }
  let algorithm = algorithm(name).ok_or_else(|| NodeError::UnknownDigest(name.to_owned()))?;
  Ok(digest::digest(algorithm, data).as_ref().to_vec())
}

/// The HMAC of `data` under `key` with digest `name`.
#[op2]
#[buffer]
pub fn op_node_hmac(
  #[string] name: &str,
  #[buffer] key: &[u8],
  #[buffer] data: &[u8],
) -> Result<Vec<u8>, NodeError> {
  let algorithm = match name.to_ascii_lowercase().as_str() {
    "sha1" | "sha-1" => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
    "sha224" | "sha-224" => hmac::HMAC_SHA224,
    "sha256" | "sha-256" => hmac::HMAC_SHA256,
    "sha384" | "sha-384" => hmac::HMAC_SHA384,
    "sha512" | "sha-512" => hmac::HMAC_SHA512,
    _ => return Err(NodeError::UnknownDigest(name.to_owned())),
  };
  let key = hmac::Key::new(algorithm, key);
  Ok(hmac::sign(&key, data).as_ref().to_vec())
}

/// PBKDF2 of `password` and `salt`: `length` bytes after `iterations`.
#[op2]
#[buffer]
pub fn op_node_pbkdf2(
  #[string] name: &str,
  #[buffer] password: &[u8],
  #[buffer] salt: &[u8],
  iterations: u32,
  length: u32,
) -> Result<Vec<u8>, NodeError> {
  let algorithm = match name.to_ascii_lowercase().as_str() {
    "sha1" | "sha-1" => pbkdf2::PBKDF2_HMAC_SHA1,
    "sha256" | "sha-256" => pbkdf2::PBKDF2_HMAC_SHA256,
    "sha384" | "sha-384" => pbkdf2::PBKDF2_HMAC_SHA384,
    "sha512" | "sha-512" => pbkdf2::PBKDF2_HMAC_SHA512,
    _ => return Err(NodeError::UnknownDigest(name.to_owned())),
  };
  let iterations = std::num::NonZeroU32::new(iterations)
    .ok_or(NodeError::Range("iterations must be at least 1"))?;
  // A derivation of more than 1 MiB is a mistake, not a key.
  if length == 0 || length > (1 << 20) {
    return Err(NodeError::Range("keylen must be between 1 and 1048576"));
  }
  let mut out = vec![0; length as usize];
  pbkdf2::derive(algorithm, iterations, salt, password, &mut out);
  Ok(out)
}

/// scrypt of `password` and `salt` with cost `n` (a power of two), block
/// size `r` and parallelism `p`: `length` bytes. Node's default memory cap
/// (`maxmem`, 32 MiB) is checked by the caller.
#[op2]
#[buffer]
pub fn op_node_scrypt(
  #[buffer] password: &[u8],
  #[buffer] salt: &[u8],
  n: u32,
  r: u32,
  p: u32,
  length: u32,
) -> Result<Vec<u8>, NodeError> {
  if n < 2 || !n.is_power_of_two() {
    return Err(NodeError::Range("N must be a power of two greater than 1"));
  }
  if length == 0 || length > (1 << 20) {
    return Err(NodeError::Range("keylen must be between 1 and 1048576"));
  }
  let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| NodeError::Range("N is too large"))?;
  let params = scrypt::Params::new(log_n, r, p, length as usize)
    .map_err(|_| NodeError::Range("invalid scrypt parameters"))?;
  let mut out = vec![0; length as usize];
  scrypt::scrypt(password, salt, &params, &mut out)
    .map_err(|_| NodeError::Range("invalid scrypt output length"))?;
  Ok(out)
}
