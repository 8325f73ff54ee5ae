//! Eviction: past the resident budget, idle isolates are evicted least
//! recently used first, and an evicted worker answers again on its next
//! request, from a fresh isolate.

use std::time::{Duration, Instant};

use outpost_runtime::{ExecutorOptions, ResidencyPolicy};

use crate::util::{TestServer, expected, fixtures_dir, get_text, http1};

/// Waits until the node has evicted at least `at_least` isolates in all.
async fn wait_for_evictions(server: &TestServer, at_least: u64) {
  let deadline = Instant::now() + Duration::from_secs(15);
  loop {
    let stats = server.dispatcher.stats().await;
    if stats.evictions >= at_least {
      return;
    }
    assert!(
      Instant::now() < deadline,
      "only {} evictions, expected {at_least}",
      stats.evictions
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
  }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_isolates_are_evicted_past_the_budget_and_come_back() {
  let exp = expected("eviction");
  let workers = exp["workers"].as_u64().expect("workers") as usize;
  let per_executor = exp["max_resident_per_executor"].as_u64().expect("max") as usize;
  let source = std::fs::read_to_string(fixtures_dir().join("eviction/worker.js")).expect("fixture");
  let dir = tempfile::tempdir().expect("tempdir");
  let names: Vec<String> = (0..workers).map(|i| format!("w{i}")).collect();
  for name in &names {
    std::fs::create_dir(dir.path().join(name)).expect("folder");
    std::fs::write(dir.path().join(name).join("worker.js"), &source).expect("worker");
  }
  let options = ExecutorOptions {
    pool_size: 1,
    residency: ResidencyPolicy {
      max_resident: per_executor,
      idle_timeout: Duration::from_secs(3600),
    },
    ..ExecutorOptions::default()
  };
  let server = TestServer::folder_with(dir.path(), options).await;
  let client = http1();
  // Workers start on their first request, so none is resident yet.
  let stats = server.dispatcher.stats().await;
  assert_eq!((stats.resident, stats.dormant), (0, workers), "{stats:?}");

  let body_for = |key: &str, name: &str| exp[key].as_str().expect("body").replace("{name}", name);
  for name in &names {
    let body = get_text(&client, &server.url(&format!("/{name}/"))).await;
    assert_eq!(
      body,
      body_for("first_round_body", name),
      "every worker answers"
    );
  }
  // Two executors keep at most 2 * per_executor of the workers resident.
  let must_go = (workers - 2 * per_executor) as u64;
  wait_for_evictions(&server, must_go).await;
  let mut fresh = 0;
  for name in &names {
    let body = get_text(&client, &server.url(&format!("/{name}/"))).await;
    assert!(body.starts_with(&format!("{name} ")), "{body}");
    if body == body_for("after_eviction_body", name) {
      fresh += 1;
    }
  }
  assert!(
    fresh as u64 >= must_go,
    "only {fresh} workers came back from eviction in a fresh isolate"
  );
}
