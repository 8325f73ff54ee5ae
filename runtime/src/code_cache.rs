//! V8 code caches kept on disk, so a worker version's modules skip
//! compiling after a restart too.
//!
//! One file per module, named by the SHA-256 of the module's code:
//! `<dir>/<sha256>.v8cache`. A file holds the SHA-256 of its payload and
//! then the payload, V8's cache bytes. A file that does not match its
//! checksum is ignored (and replaced when the module is next compiled); a
//! payload V8 itself rejects (another V8 version, other flags) is replaced
//! the same way. Files are written to a temporary name and renamed, so a
//! crash never leaves half a file under the real name.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const CHECKSUM_LEN: usize = 32;

/// A directory of code cache files.
#[derive(Debug, Clone)]
pub(crate) struct CodeCacheDir {
  dir: PathBuf,
}

impl CodeCacheDir {
  pub(crate) fn new(dir: PathBuf) -> Self {
    Self { dir }
  }

  fn path(&self, code_sha256: &str) -> PathBuf {
    self.dir.join(format!("{code_sha256}.v8cache"))
  }

  /// The cache stored for the code with this SHA-256, if there is one and
  /// it is intact.
  pub(crate) fn read(&self, code_sha256: &str) -> Option<Vec<u8>> {
    let path = self.path(code_sha256);
    let file = match std::fs::read(&path) {
      Ok(file) => file,
      Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
      Err(err) => {
        tracing::warn!("cannot read the code cache {}: {err}", path.display());
        return None;
      }
    };
    let (checksum, payload) = file.split_at_checked(CHECKSUM_LEN)?;
    if Sha256::digest(payload).as_slice() != checksum {
      tracing::warn!("ignoring the damaged code cache {}", path.display());
      return None;
    }
    Some(payload.to_vec())
  }

  /// Stores `payload` as the cache for the code with this SHA-256. Failure
  /// only costs a compile next time, so it is logged, not returned.
  pub(crate) fn write(&self, code_sha256: &str, payload: &[u8]) {
    let path = self.path(code_sha256);
    if let Err(err) = write_atomically(&self.dir, &path, payload) {
      tracing::warn!("cannot store the code cache {}: {err}", path.display());
    }
  }
}

fn write_atomically(dir: &Path, path: &Path, payload: &[u8]) -> std::io::Result<()> {
  std::fs::create_dir_all(dir)?;
  let mut file = tempfile::NamedTempFile::new_in(dir)?;
  file.write_all(&Sha256::digest(payload))?;
  file.write_all(payload)?;
  file.persist(path).map_err(|e| e.error)?;
  Ok(())
}

/// The SHA-256 of `code`, in hex: what names its cache file.
pub(crate) fn code_sha256(code: &str) -> String {
  outpost_protocol::bundle::hex(&Sha256::digest(code.as_bytes()))
}
