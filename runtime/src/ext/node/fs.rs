//! `op_node_fs_bundle_*`: node:fs's read-only view of the worker's own
//! modules under `/bundle` ([`BundleFiles`]). The rest of
//! node:fs (`/tmp`, file descriptors) lives in JS: no op here reaches the
//! host's file system.

use std::sync::Arc;

use deno_core::{OpState, op2};

use super::bundle_files::{BundleFiles, ModuleFiles};

/// The bundle of the worker an isolate runs, for node:fs.
pub(crate) struct NodeBundle(pub(crate) Arc<dyn ModuleFiles>);

fn files(state: &OpState) -> Option<&BundleFiles> {
  state
    .try_borrow::<NodeBundle>()
    .map(|bundle| bundle.0.module_files())
}

/// What `path` (below `/bundle`, `""` for itself) is: -2 a folder, -1
/// nothing, else a file of that many bytes.
#[op2(fast)]
pub fn op_node_fs_bundle_stat(state: &OpState, #[string] path: &str) -> f64 {
  let Some(files) = files(state) else {
    return -1.0;
  };
  if files.is_dir(path) {
    return -2.0;
  }
  files.file(path).map_or(-1.0, |code| code.len() as f64)
}

/// The bytes of the file at `path`, if it is one.
#[op2]
#[buffer]
pub fn op_node_fs_bundle_read(state: &OpState, #[string] path: &str) -> Option<Vec<u8>> {
  files(state)?
    .file(path)
    .map(|code| code.as_bytes().to_vec())
}

/// The names in folder `path`, if it is one.
#[op2]
#[serde]
pub fn op_node_fs_bundle_list(state: &OpState, #[string] path: &str) -> Option<Vec<String>> {
  files(state)?.list(path)
}
