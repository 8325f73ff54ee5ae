//! The bundles and assets an edge keeps on disk, trusted only once checked:
//! a bundle's `bundle.json` must hash to its name and every module file
//! written from it must still match it; an asset must have its manifest
//! size (and, read into memory, its hash: see [`crate::assets`]). What
//! fails is discarded, so the node fetches it again. What no deployed
//! version needs any more is removed as each state is applied.
//!
//! Layout under the node's data folder:
//! - `bundles/<sha256>/`: `bundle.json` (its canonical bytes), `modules/`
//!   (the module files the worker loads) and `code-cache/`;
//! - `assets/<sha256>`: asset files by hash.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use outpost_protocol::Bundle;
use outpost_protocol::assets::AssetManifest;
use outpost_protocol::bundle::{is_sha256_hex, sha256_hex};

use crate::control::{ControlError, disk};

/// How closely assets on disk are checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
  /// Present with the manifest's size: cheap, for every state applied.
  Size,
  /// Hashed in full: once, when a restart serves from disk.
  Hash,
}

/// A node's bundle and asset folders.
pub(crate) struct BundleStore {
  data: PathBuf,
}

impl BundleStore {
  /// The store in the node's data folder `data`.
  pub(crate) fn new(data: PathBuf) -> Self {
    Self { data }
  }

  /// Where bundle `hash` is kept.
  pub(crate) fn dir(&self, hash: &str) -> PathBuf {
    self.data.join("bundles").join(hash)
  }

  /// Where assets are kept, each under its hash.
  pub(crate) fn assets_dir(&self) -> PathBuf {
    self.data.join("assets")
  }

  /// The bundle `hash` as stored, checked: its bytes hash to `hash` and
  /// its module files are what it says.
  pub(crate) fn load(&self, hash: &str) -> Result<Bundle, ControlError> {
    let damaged = |why: String| ControlError::Bundle {
      hash: hash.to_owned(),
      why,
    };
    // The hash names a folder: it must be nothing but a hash.
    if !is_sha256_hex(hash) {
      return Err(damaged("not a sha256 hash".into()));
    }
    let dir = self.dir(hash);
    let path = dir.join("bundle.json");
    let bytes = std::fs::read(&path).map_err(disk(&path))?;
    let bundle = Bundle::from_stored(&bytes, hash).map_err(|err| damaged(err.to_string()))?;
    for (module, source) in &bundle.modules {
      let file = dir.join("modules").join(module);
      match std::fs::read(&file) {
        Ok(on_disk) if on_disk == source.as_bytes() => {}
        Ok(_) => return Err(damaged(format!("module {module} differs from the bundle"))),
        Err(err) => return Err(damaged(format!("module {module}: {err}"))),
      }
    }
    Ok(bundle)
  }

  /// Writes a fetched bundle: checked against its hash, its modules
  /// written out, the folder renamed into place whole.
  pub(crate) fn store(&self, hash: &str, bytes: &[u8]) -> Result<(), ControlError> {
    let bundle = Bundle::from_stored(bytes, hash).map_err(|err| ControlError::Bundle {
      hash: hash.to_owned(),
      why: err.to_string(),
    })?;
    let bundles = self.data.join("bundles");
    std::fs::create_dir_all(&bundles).map_err(disk(&bundles))?;
    let done = self.dir(hash);
    let building = bundles.join(format!(".{hash}.partial"));
    let _ = std::fs::remove_dir_all(&building);
    for (path, source) in &bundle.modules {
      // Bundle::from_stored checked every path is relative and plain.
      let file = building.join("modules").join(path);
      if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent).map_err(disk(parent))?;
      }
      std::fs::write(&file, source).map_err(disk(&file))?;
    }
    let file = building.join("bundle.json");
    std::fs::write(&file, bytes).map_err(disk(&file))?;
    std::fs::rename(&building, &done).map_err(disk(&done))
  }

  /// Throws away bundle `hash`, damaged, so it is fetched again.
  pub(crate) fn discard(&self, hash: &str) {
    if is_sha256_hex(hash) {
      let _ = std::fs::remove_dir_all(self.dir(hash));
    }
  }

  /// Removes every bundle not in `bundles` and every asset not in
  /// `assets` (a retired version's, say): a rollback fetches them again.
  /// Returns how many bundles and assets went. Only names that are hashes
  /// are touched, so a bundle being written (`.<hash>.partial`) stays.
  pub(crate) fn collect(
    &self,
    bundles: &BTreeSet<&str>,
    assets: &BTreeSet<&str>,
  ) -> (usize, usize) {
    let unused = |dir: &Path, keep: &BTreeSet<&str>| -> Vec<PathBuf> {
      let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
      };
      entries
        .flatten()
        .filter(|entry| {
          let name = entry.file_name();
          name
            .to_str()
            .is_some_and(|name| is_sha256_hex(name) && !keep.contains(name))
        })
        .map(|entry| entry.path())
        .collect()
    };
    let gone_bundles = unused(&self.data.join("bundles"), bundles)
      .into_iter()
      .filter(|dir| std::fs::remove_dir_all(dir).is_ok())
      .count();
    let gone_assets = unused(&self.assets_dir(), assets)
      .into_iter()
      .filter(|file| std::fs::remove_file(file).is_ok())
      .count();
    (gone_bundles, gone_assets)
  }

  /// The assets of `manifest` not on disk as they should be: missing, of
  /// the wrong size or, with `Check::Hash`, of the wrong content. Those on
  /// disk are removed, to be fetched again.
  pub(crate) fn unusable_assets(&self, manifest: &AssetManifest, check: Check) -> Vec<String> {
    let dir = self.assets_dir();
    let mut unusable: Vec<String> = manifest
      .files
      .values()
      .filter(|file| {
        let path = dir.join(&file.hash);
        !has_size(&path, file.size)
          || check == Check::Hash
            && std::fs::read(&path).map_or(true, |bytes| sha256_hex(&bytes) != file.hash)
      })
      .map(|file| file.hash.clone())
      .collect();
    unusable.sort();
    unusable.dedup();
    for hash in &unusable {
      if is_sha256_hex(hash) {
        let _ = std::fs::remove_file(dir.join(hash));
      }
    }
    unusable
  }
}

fn has_size(path: &Path, size: u64) -> bool {
  std::fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.len() == size)
}
