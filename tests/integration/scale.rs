//! Thousands of workers on one node: each answers with its own name, the
//! resident budget forces evictions, and evicted workers answer again.

use std::time::{Duration, Instant};

use outpost_runtime::{ExecutorOptions, ResidencyPolicy};

use crate::util::{TestServer, get_text, http1};

const WORKERS: usize = 2000;
const RESIDENT_PER_EXECUTOR: usize = 100;

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_workers_each_answer_and_evicted_ones_come_back() {
  let dir = tempfile::tempdir().expect("tempdir");
  for i in 0..WORKERS {
    let folder = dir.path().join(format!("w{i}"));
    std::fs::create_dir(&folder).expect("folder");
    let source = format!("export default {{ fetch() {{ return new Response('w{i}'); }} }};\n");
    std::fs::write(folder.join("worker.js"), source).expect("worker");
  }
  let options = ExecutorOptions {
    pool_size: 4,
    residency: ResidencyPolicy {
      max_resident: RESIDENT_PER_EXECUTOR,
      idle_timeout: Duration::from_secs(3600),
    },
    ..ExecutorOptions::default()
  };
  let started = Instant::now();
  let server = TestServer::folder_with(dir.path(), options).await;
  let loaded = started.elapsed();
  let client = http1();
  for i in 0..WORKERS {
    assert_eq!(
      get_text(&client, &server.url(&format!("/w{i}/"))).await,
      format!("w{i}")
    );
  }
  let stats = server.dispatcher.stats().await;
  assert!(
    stats.evictions > 0,
    "the budget should have forced evictions: {stats:?}"
  );
  // The first workers were evicted long ago; they answer again.
  for i in 0..20 {
    assert_eq!(
      get_text(&client, &server.url(&format!("/w{i}/"))).await,
      format!("w{i}")
    );
  }
  eprintln!(
    "{WORKERS} workers: loaded in {loaded:?}, served in {:?}; {stats:?}",
    started.elapsed()
  );
}
