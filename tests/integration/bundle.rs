//! Building bundles and installing them: every failure names its file, and
//! for code errors the line and column.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use outpost_runtime::{
  BundleError, WorkerBundle, WorkerEnv, WorkerError, WorkerVersion, spawn_executor,
};

fn write(dir: &Path, name: &str, source: &str) -> PathBuf {
  let path = dir.join(name);
  std::fs::write(&path, source).expect("write module");
  path
}

fn load_error(source: &str) -> (tempfile::TempDir, BundleError) {
  let dir = tempfile::tempdir().expect("tempdir");
  let entry = write(dir.path(), "worker.js", source);
  let err = WorkerBundle::load(&entry).expect_err("the bundle is refused");
  (dir, err)
}

#[test]
fn syntax_errors_carry_file_line_and_column() {
  let (dir, err) =
    load_error("export default {\n  fetch() { return new Response(1) }\n  let = ;\n};\n");
  let message = err.to_string();
  assert!(matches!(err, BundleError::Syntax(_)), "{message}");
  let location = format!(
    "{}:3:",
    dir
      .path()
      .canonicalize()
      .expect("canonical")
      .join("worker.js")
      .display()
  );
  assert!(
    message.contains(&location),
    "{message} should name {location}"
  );
}

#[test]
fn syntax_errors_in_imported_modules_name_that_module() {
  let dir = tempfile::tempdir().expect("tempdir");
  let entry = write(
    dir.path(),
    "worker.js",
    "import { x } from './lib.js';\nexport default { fetch() { return new Response(x) } };\n",
  );
  write(dir.path(), "lib.js", "export const x = ;\n");
  let message = WorkerBundle::load(&entry).expect_err("refused").to_string();
  assert!(message.contains("lib.js:1:"), "{message}");
}

#[test]
fn bare_and_remote_imports_are_refused_clearly() {
  let (_dir, err) = load_error("import lodash from 'lodash';\nexport default {};\n");
  let message = err.to_string();
  assert!(
    message.contains("\"lodash\"") && message.contains("not found in node_modules"),
    "{message}"
  );

  let (_dir, err) = load_error("import x from 'https://example.com/x.js';\nexport default {};\n");
  assert!(err.to_string().contains("URLs cannot be imported"), "{err}");

  let (_dir, err) = load_error("import cp from 'node:child_process';\nexport default {};\n");
  assert!(
    err
      .to_string()
      .contains("node:child_process is not available"),
    "{err}"
  );
}

#[test]
fn missing_modules_and_unknown_types_name_the_file() {
  let (_dir, err) = load_error("import './nope.js';\nexport default {};\n");
  assert!(
    matches!(err, BundleError::Import { .. })
      && err.to_string().contains("nope.js")
      && err.to_string().contains("worker.js"),
    "{err}"
  );

  let dir = tempfile::tempdir().expect("tempdir");
  write(dir.path(), "style.css", "body {}");
  let entry = write(
    dir.path(),
    "worker.js",
    "import './style.css';\nexport default {};\n",
  );
  let err = WorkerBundle::load(&entry).expect_err("refused");
  assert!(
    matches!(err, BundleError::UnsupportedType(_)) && err.to_string().contains("style.css"),
    "{err}"
  );
}

async fn install_error(source: &str) -> (tempfile::TempDir, WorkerError) {
  install_error_with(&[], source).await
}

/// As [`install_error`], with `files` (name, source) beside worker.js.
async fn install_error_with(
  files: &[(&str, &str)],
  source: &str,
) -> (tempfile::TempDir, WorkerError) {
  let dir = tempfile::tempdir().expect("tempdir");
  for (name, text) in files {
    write(dir.path(), name, text);
  }
  let entry = write(dir.path(), "worker.js", source);
  let bundle = Arc::new(WorkerBundle::load(&entry).expect("bundle builds"));
  let executor = spawn_executor("bundle-test").expect("executor");
  let version = WorkerVersion {
    bundle,
    env: Arc::new(WorkerEnv::default()),
    limits: Default::default(),
  };
  let err = executor
    .install("w", version)
    .await
    .expect_err("install fails");
  (dir, err)
}

#[tokio::test]
async fn a_throwing_top_level_is_reported_with_its_location() {
  let (_dir, err) =
    install_error("export default { fetch() {} };\nthrow new Error('top-level failure');\n").await;
  let message = err.to_string();
  assert!(
    message.contains("top-level failure") && message.contains("worker.js:2:7"),
    "{message}"
  );
}

#[tokio::test]
async fn a_worker_without_a_fetch_handler_is_refused() {
  let (_dir, err) = install_error("export const nothing = 1;\n").await;
  assert!(err.to_string().contains("no fetch handler"), "{err}");
}

#[tokio::test]
async fn the_first_isolate_of_a_version_leaves_a_code_cache_for_the_next() {
  let dir = tempfile::tempdir().expect("tempdir");
  let entry = write(
    dir.path(),
    "worker.js",
    "import { greet } from './lib.js';\nexport default { fetch() { return new Response(greet()) } };\n",
  );
  write(dir.path(), "lib.js", "export const greet = () => 'hi';\n");
  let bundle = Arc::new(WorkerBundle::load(&entry).expect("bundle builds"));
  assert_eq!(bundle.cached_modules(), 0);
  let executor = spawn_executor("code-cache-test").expect("executor");
  let version = WorkerVersion {
    bundle: bundle.clone(),
    env: Arc::new(WorkerEnv::default()),
    limits: Default::default(),
  };
  executor
    .install("first", version.clone())
    .await
    .expect("install");
  let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
  while bundle.cached_modules() < 2 {
    assert!(
      std::time::Instant::now() < deadline,
      "only {} modules cached",
      bundle.cached_modules()
    );
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
  }
  // A second isolate of the same version starts from the cache.
  executor
    .install("second", version)
    .await
    .expect("install from the cache");
}

#[test]
fn modules_with_multibyte_text_and_source_map_comments_load() {
  let dir = tempfile::tempdir().expect("tempdir");
  // Long enough that a byte offset from the end lands inside a character.
  let text = "எழுத்துக்கள் ".repeat(400);
  let entry = write(
    dir.path(),
    "worker.js",
    &format!(
      "export const words = \"{text}\";\nexport default {{}};\n//# sourceMappingURL=missing.js.map\n"
    ),
  );
  let bundle = WorkerBundle::load(&entry).expect("bundle builds");
  assert_eq!(
    bundle.files().len(),
    1,
    "a missing map is not a file of the bundle"
  );
  std::fs::write(
    dir.path().join("missing.js.map"),
    "{\"version\":3,\"sources\":[],\"mappings\":\"\"}",
  )
  .expect("map");
  let bundle = WorkerBundle::load(&entry).expect("bundle builds");
  assert_eq!(
    bundle.files().len(),
    2,
    "a map beside the module travels with it"
  );
}

/// CommonJS that guards a `require` with `try`, as pg does for pg-native:
/// the failure of a module only `require` reaches is thrown by that
/// `require`, where the guard catches it, not when the bundle loads.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_optional_require_is_caught_where_it_is_required() {
  let dir = tempfile::tempdir().expect("tempdir");
  write(
    dir.path(),
    "native.js",
    "const binding = require('not-installed');\nmodule.exports = binding;\n",
  );
  write(
    dir.path(),
    "lib.js",
    "let native;\ntry { native = require('./native.js'); } catch (err) { native = err.code; }\n\
     module.exports = { native };\n",
  );
  let entry = write(
    dir.path(),
    "worker.js",
    "import lib from './lib.js';\nexport default { fetch() { return new Response(lib.native); } };\n",
  );
  let server = crate::util::TestServer::start(&entry, Default::default()).await;
  let body = crate::util::get_text(&crate::util::http1(), &server.url("/")).await;
  assert_eq!(body, "MODULE_NOT_FOUND");

  // A CommonJS module that an import reaches still fails the load.
  let (_dir, err) = install_error_with(
    &[("broken.js", "module.exports = 1;\nthrow new Error('broken at load');\n")],
    "import value from './broken.js';\nexport default { fetch() { return new Response(String(value)); } };\n",
  )
  .await;
  assert!(err.to_string().contains("broken at load"), "{err}");
}
