//! Sealing secrets at rest: AES-256-GCM under the control plane's secrets
//! key, which lives outside the database (a file beside it, or the
//! environment), so a copy of the database alone reveals no private key.

use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The environment variable that gives the key (base64 of 32 bytes); every
/// replica on one PostgreSQL database needs the same.
pub const KEY_ENV: &str = "OUTPOST_SECRETS_KEY";
/// The key's file in a SQLite data folder.
pub const KEY_FILE: &str = "secrets.key";

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
  /// No key was given where one must be.
  #[error("no secrets key: set {KEY_ENV} (base64 of 32 random bytes, the same on every replica)")]
  NoKey,
  /// The key is not 32 bytes of base64.
  #[error("the secrets key must be base64 of 32 bytes")]
  BadKey,
  /// The key file could not be read or written.
  #[error("{0}")]
  Io(#[from] std::io::Error),
  /// A sealed value that does not open: another key sealed it, or it was
  /// changed.
  #[error("a sealed secret does not open with this key")]
  Corrupt,
  /// The operating system gave no randomness.
  #[error("no randomness from the operating system")]
  Random,
}

/// The key secrets are sealed with.
pub struct SecretsKey(LessSafeKey);

impl std::fmt::Debug for SecretsKey {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.write_str("SecretsKey(..)")
  }
}

impl SecretsKey {
  /// The key from base64 text.
  pub fn from_base64(text: &str) -> Result<Self, SecretsError> {
    let bytes = STANDARD
      .decode(text.trim())
      .map_err(|_| SecretsError::BadKey)?;
    let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SecretsError::BadKey)?;
    Ok(Self(LessSafeKey::new(key)))
  }

  /// The key from the environment, if it is set there.
  pub fn from_env() -> Result<Option<Self>, SecretsError> {
    match std::env::var(KEY_ENV) {
      Ok(text) => Self::from_base64(&text).map(Some),
      Err(_) => Ok(None),
    }
  }

  /// The key in `dir`'s key file, made (0600) on first use.
  pub fn load_or_create(dir: &Path) -> Result<Self, SecretsError> {
    let path = dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
      Ok(text) => return Self::from_base64(&text),
      Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err.into()),
      Err(_) => {}
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| SecretsError::Random)?;
    let text = STANDARD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
      Ok(mut file) => {
        std::io::Write::write_all(&mut file, text.as_bytes())?;
        file.sync_all()?;
        Self::from_base64(&text)
      }
      // Another process made it first: use theirs.
      Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
        Self::from_base64(&std::fs::read_to_string(&path)?)
      }
      Err(err) => Err(err.into()),
    }
  }

  /// Seals `secret`: base64 of a random nonce and the ciphertext.
  pub fn seal(&self, secret: &[u8]) -> Result<String, SecretsError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| SecretsError::Random)?;
    let mut sealed = secret.to_vec();
    self
      .0
      .seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::empty(),
        &mut sealed,
      )
      .map_err(|_| SecretsError::Corrupt)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(STANDARD.encode(out))
  }

  /// Opens what [`SecretsKey::seal`] sealed.
  pub fn open(&self, sealed: &str) -> Result<Vec<u8>, SecretsError> {
    let bytes = STANDARD.decode(sealed).map_err(|_| SecretsError::Corrupt)?;
    if bytes.len() < NONCE_LEN {
      return Err(SecretsError::Corrupt);
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretsError::Corrupt)?;
    let mut buffer = sealed.to_vec();
    let plain = self
      .0
      .open_in_place(nonce, Aad::empty(), &mut buffer)
      .map_err(|_| SecretsError::Corrupt)?;
    Ok(plain.to_vec())
  }
}
