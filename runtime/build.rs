//! Builds the V8 startup snapshot: every isolate starts from it with the Web
//! API globals already in place.

// The ext modules are shared with the library; the build script uses only
// their extension declarations.
#![allow(dead_code, unused_imports)]

#[path = "src/ext/mod.rs"]
mod ext;
#[path = "src/extensions.rs"]
mod extensions;

use std::path::PathBuf;

fn main() {
  let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
  let snapshot = deno_core::snapshot::create_snapshot(
    deno_core::snapshot::CreateSnapshotOptions {
      cargo_manifest_dir: env!("CARGO_MANIFEST_DIR"),
      startup_snapshot: None,
      skip_op_registration: false,
      extensions: extensions::all(),
      extension_transpiler: None,
      with_runtime_cb: None,
    },
    None,
  )
  .expect("building the startup snapshot failed");
  std::fs::write(out.join("OUTPOST_SNAPSHOT.bin"), &snapshot.output)
    .expect("writing the snapshot to OUT_DIR failed");
  for file in snapshot.files_loaded_during_snapshot {
    println!("cargo:rerun-if-changed={}", file.display());
  }
  // The JS is embedded with include_str!, so cargo may not report it as
  // loaded; watch the whole js-api tree to be sure.
  println!("cargo:rerun-if-changed=../js-api/src");
  println!("cargo:rerun-if-changed=src");
}
