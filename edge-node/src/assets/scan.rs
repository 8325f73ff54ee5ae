//! An `[assets]` folder read into a manifest: every file's path, sha256
//! and size, checked against the limits with the file named.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use outpost_protocol::assets::{AssetFile, AssetManifest, MAX_ASSET_BYTES, MAX_ASSET_FILES};
use outpost_protocol::bundle::sha256_hex;

use super::AssetsError;

/// A folder's files: the manifest (its options left as default), and
/// where each manifest path's bytes are on disk.
#[derive(Debug, Clone, Default)]
pub struct ScannedAssets {
  /// The files, by path.
  pub manifest: AssetManifest,
  /// Each file's location, by manifest path.
  pub paths: BTreeMap<String, PathBuf>,
}

/// Files wrangler never uploads.
const SKIPPED: [&str; 1] = [".assetsignore"];

/// Reads every file under `dir` (following no symlinked folders).
pub fn scan(dir: &Path) -> Result<ScannedAssets, AssetsError> {
  let io = |path: &Path| {
    let path = path.to_owned();
    move |err: std::io::Error| AssetsError::Io(path, err)
  };
  if !dir.is_dir() {
    return Err(AssetsError::NoFolder(dir.to_owned()));
  }
  let mut scanned = ScannedAssets::default();
  let mut pending = vec![dir.to_owned()];
  while let Some(folder) = pending.pop() {
    for entry in std::fs::read_dir(&folder).map_err(io(&folder))? {
      let entry = entry.map_err(io(&folder))?;
      let path = entry.path();
      let kind = entry.file_type().map_err(io(&path))?;
      if kind.is_dir() {
        pending.push(path);
        continue;
      }
      let name = entry.file_name();
      if SKIPPED.iter().any(|skip| name == *skip) {
        continue;
      }
      let relative = path.strip_prefix(dir).unwrap_or(&path);
      let mut key = String::new();
      for part in relative.components() {
        let part = part.as_os_str().to_str().ok_or_else(|| {
          AssetsError::Invalid(format!("{} is not a UTF-8 file name", path.display()))
        })?;
        key.push('/');
        key.push_str(part);
      }
      let size = std::fs::metadata(&path).map_err(io(&path))?.len();
      if size > MAX_ASSET_BYTES {
        return Err(AssetsError::Invalid(format!(
          "{} is {size} bytes; an asset may be at most {MAX_ASSET_BYTES} bytes (25 MiB)",
          path.display()
        )));
      }
      if scanned.paths.len() >= MAX_ASSET_FILES {
        return Err(AssetsError::Invalid(format!(
          "{} holds more than {MAX_ASSET_FILES} files, the most one version may have",
          dir.display()
        )));
      }
      let bytes = std::fs::read(&path).map_err(io(&path))?;
      scanned.manifest.files.insert(
        key.clone(),
        AssetFile {
          hash: sha256_hex(&bytes),
          size,
        },
      );
      scanned.paths.insert(key, path);
    }
  }
  Ok(scanned)
}
