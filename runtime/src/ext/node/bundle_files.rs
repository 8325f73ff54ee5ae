//! The bundle's modules as read-only files: what node:fs shows under
//! `/bundle`. Each is named by its path below the folder that holds them
//! all, which is the same in `outpost dev` and on an edge, and holds the
//! code the isolate runs (TypeScript transpiled, CommonJS wrapped).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deno_core::ModuleSpecifier;

/// Where node:fs finds the worker's modules.
pub trait ModuleFiles {
  /// The modules as files.
  fn module_files(&self) -> &BundleFiles;
}

/// The files and folders of a bundle, by their `/`-separated path.
#[derive(Debug, Default)]
pub struct BundleFiles {
  files: BTreeMap<String, Arc<str>>,
  /// Every folder that holds a file, `""` being the top.
  dirs: BTreeSet<String>,
}

impl BundleFiles {
  /// The files of `modules`, each a module's file URL and code.
  pub fn new<'a>(modules: impl Iterator<Item = (&'a ModuleSpecifier, &'a Arc<str>)>) -> Self {
    let paths: Vec<(PathBuf, &Arc<str>)> = modules
      .filter_map(|(specifier, code)| Some((specifier.to_file_path().ok()?, code)))
      .collect();
    let Some(mut root) = paths.first().and_then(|(path, _)| path.parent()) else {
      return Self::default();
    };
    for (path, _) in &paths {
      while !path.starts_with(root) {
        match root.parent() {
          Some(parent) => root = parent,
          None => break,
        }
      }
    }
    let mut view = Self::default();
    view.dirs.insert(String::new());
    for (path, code) in &paths {
      let Some(name) = relative_name(path, root) else {
        continue;
      };
      let mut folder = name.as_str();
      while let Some((parent, _)) = folder.rsplit_once('/') {
        view.dirs.insert(parent.to_owned());
        folder = parent;
      }
      view.files.insert(name, Arc::clone(code));
    }
    view
  }

  /// The file at `path`, if there is one.
  pub fn file(&self, path: &str) -> Option<&Arc<str>> {
    self.files.get(path)
  }

  /// Whether `path` is a folder (`""` is the top).
  pub fn is_dir(&self, path: &str) -> bool {
    self.dirs.contains(path)
  }

  /// The names directly in folder `path`, in order; `None` if it is not
  /// a folder.
  pub fn list(&self, path: &str) -> Option<Vec<String>> {
    if !self.is_dir(path) {
      return None;
    }
    let prefix = if path.is_empty() {
      String::new()
    } else {
      format!("{path}/")
    };
    let direct = |name: &String| {
      let rest = name.strip_prefix(&prefix)?;
      (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_owned())
    };
    let mut names: Vec<String> = self
      .files
      .keys()
      .filter_map(direct)
      .chain(self.dirs.iter().filter_map(direct))
      .collect();
    names.sort();
    Some(names)
  }
}

fn relative_name(path: &Path, root: &Path) -> Option<String> {
  let parts: Option<Vec<&str>> = path
    .strip_prefix(root)
    .ok()?
    .components()
    .map(|part| part.as_os_str().to_str())
    .collect();
  let parts = parts?;
  (!parts.is_empty()).then(|| parts.join("/"))
}
