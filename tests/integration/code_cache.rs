//! V8 code caches on disk: the first isolate of a version writes them, a
//! bundle loaded later (as after a restart) starts with them, and a damaged
//! or stale file is ignored rather than trusted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use outpost_runtime::{
  ExecutorHandle, RequestBody, WorkerBundle, WorkerEnv, WorkerRequest, WorkerVersion,
  spawn_executor,
};

const WORKER: &str = "import { greet } from './lib.js';\nexport default { fetch() { return new Response(greet()) } };\n";

fn cache_files(dir: &Path) -> Vec<(PathBuf, SystemTime)> {
  let Ok(entries) = std::fs::read_dir(dir) else {
    return Vec::new();
  };
  let mut files: Vec<_> = entries
    .filter_map(|e| e.ok())
    .map(|e| e.path())
    .filter(|p| p.extension().is_some_and(|e| e == "v8cache"))
    .map(|p| {
      let modified = p.metadata().and_then(|m| m.modified()).expect("mtime");
      (p, modified)
    })
    .collect();
  files.sort();
  files
}

/// Installs `bundle` as `name` and checks that it answers `want`.
async fn serve(executor: &ExecutorHandle, name: &str, bundle: WorkerBundle, want: &str) {
  let version = WorkerVersion {
    bundle: Arc::new(bundle),
    env: Arc::new(WorkerEnv::default()),
    limits: Default::default(),
  };
  executor.install(name, version).await.expect("install");
  let request = WorkerRequest {
    method: http::Method::GET,
    url: "http://cache.localhost/".into(),
    headers: http::HeaderMap::new(),
    body: RequestBody::Empty,
    cf: None,
    scheduled: None,
    rpc: None,
    entrypoint: None,
    limits: Default::default(),
  };
  let response = executor.dispatch(name, request).await.expect("answer");
  assert_eq!(response.status, 200);
  let body = match response.body {
    outpost_runtime::ResponseBody::Full(bytes) => bytes,
    other => panic!("expected a whole body, got {other:?}"),
  };
  assert_eq!(body, want.as_bytes());
}

#[tokio::test]
async fn code_caches_on_disk_outlive_the_bundle_and_damaged_ones_are_ignored() {
  let dir = tempfile::tempdir().expect("tempdir");
  let entry = dir.path().join("worker.js");
  std::fs::write(&entry, WORKER).expect("worker");
  std::fs::write(
    dir.path().join("lib.js"),
    "export const greet = () => 'hi';\n",
  )
  .expect("lib");
  let cache = dir.path().join(".outpost/code-cache");
  let load = || {
    WorkerBundle::load(&entry)
      .expect("bundle")
      .with_code_cache_dir(&cache)
  };
  let executor = spawn_executor("code-cache-disk").expect("executor");

  // The first isolate compiles both modules and writes their caches.
  let first = load();
  assert_eq!(first.cached_modules(), 0);
  serve(&executor, "first", first, "hi").await;
  let deadline = Instant::now() + Duration::from_secs(10);
  while cache_files(&cache).len() < 2 {
    assert!(Instant::now() < deadline, "{:?}", cache_files(&cache));
    tokio::time::sleep(Duration::from_millis(20)).await;
  }
  let written = cache_files(&cache);

  // A bundle loaded afterwards, as after a restart, starts with both, and
  // V8 takes them: nothing is compiled, so nothing is rewritten.
  let restarted = load();
  assert_eq!(restarted.cached_modules(), 2);
  serve(&executor, "restarted", restarted, "hi").await;
  tokio::time::sleep(Duration::from_millis(300)).await;
  assert_eq!(cache_files(&cache), written);

  // A damaged file is ignored; the worker still serves, and the module's
  // cache is written afresh.
  let (damaged, _) = &written[0];
  let mut bytes = std::fs::read(damaged).expect("read");
  let last = bytes.len() - 1;
  bytes[last] ^= 0xff;
  std::fs::write(damaged, &bytes).expect("damage");
  let after_damage = load();
  assert_eq!(after_damage.cached_modules(), 1);
  serve(&executor, "after-damage", after_damage, "hi").await;
  let deadline = Instant::now() + Duration::from_secs(10);
  while std::fs::read(damaged).expect("read") == bytes {
    assert!(
      Instant::now() < deadline,
      "the damaged cache was not replaced"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
  }

  // Changed code has no cache yet: the file is named by the code's hash.
  std::fs::write(
    dir.path().join("lib.js"),
    "export const greet = () => 'hello';\n",
  )
  .expect("lib");
  let edited = load();
  assert_eq!(edited.cached_modules(), 1);
  serve(&executor, "edited", edited, "hello").await;
}
