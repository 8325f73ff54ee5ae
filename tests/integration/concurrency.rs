//! Many requests at once, interleaved in one isolate, and more than one
//! batch of them queued at once.

use std::sync::Arc;
use std::time::Duration;

use outpost_runtime::{
  RequestBody, ResponseBody, WorkerBundle, WorkerEnv, WorkerRequest, WorkerVersion, spawn_executor,
};

use crate::util::{TestServer, expected, get_text, http1, wait_for_body};

#[tokio::test(flavor = "multi_thread")]
async fn a_request_awaiting_a_timer_does_not_hold_up_another() {
  let exp = expected("interleave");
  let server = TestServer::fixture("interleave").await;
  let client = http1();
  let slow = tokio::spawn(
    client
      .get(server.url(exp["slow"]["path"].as_str().expect("path")))
      .send(),
  );
  // Give the slow request time to reach its timer.
  tokio::time::sleep(Duration::from_millis(200)).await;
  let fast = client
    .get(server.url(exp["fast"]["path"].as_str().expect("path")))
    .send()
    .await
    .expect("fast");
  assert_eq!(
    fast.text().await.expect("body"),
    exp["fast"]["body"].as_str().expect("body")
  );
  assert!(
    !slow.is_finished(),
    "the fast request finished while the slow one still waits"
  );
  let slow = slow.await.expect("join").expect("slow");
  assert_eq!(
    slow.text().await.expect("body"),
    exp["slow"]["body"].as_str().expect("body")
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_concurrent_requests() {
  let exp = expected("interleave");
  let count = exp["concurrent_requests"].as_u64().expect("count") as usize;
  let server = TestServer::fixture("interleave").await;
  let client = http1();
  let requests = (0..count).map(|i| {
    let client = client.clone();
    let path = if i % 10 == 0 { "/slow" } else { "/fast" };
    let url = server.url(path);
    async move {
      let response = client.get(url).send().await.expect("request");
      assert_eq!(response.status(), 200);
      (path, response.text().await.expect("body"))
    }
  });
  let results = futures::future::join_all(requests).await;
  assert_eq!(results.len(), count);
  for (path, body) in results {
    assert_eq!(body, format!("{}\n", &path[1..]));
  }
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_until_work_completes_after_the_response() {
  let exp = expected("wait-until");
  let server = TestServer::fixture("wait-until").await;
  let client = http1();
  let response = client.get(server.url("/")).send().await.expect("request");
  assert_eq!(
    response.text().await.expect("body"),
    exp["body"].as_str().expect("body")
  );
  let status = get_text(&client, &server.url("/status")).await;
  assert_eq!(
    status,
    exp["status_right_after"].as_str().expect("pending"),
    "the response came before the work ended"
  );
  let want = exp["status_eventually"].as_str().expect("done");
  wait_for_body(&client, &server.url("/status"), want).await;
}

/// More requests than one batch into JS holds (64), all queued before the
/// isolate exists: each batch after the first must still be taken.
#[tokio::test(flavor = "multi_thread")]
async fn requests_queued_beyond_one_batch_are_all_answered() {
  let dir = tempfile::tempdir().expect("tempdir");
  let entry = dir.path().join("worker.js");
  std::fs::write(
    &entry,
    "export default { fetch(r) { return new Response(new URL(r.url).pathname) } };\n",
  )
  .expect("worker");
  let version = WorkerVersion {
    bundle: Arc::new(WorkerBundle::load(&entry).expect("bundle")),
    env: Arc::new(WorkerEnv::default()),
    limits: Default::default(),
  };
  let executor = spawn_executor("batches").expect("executor");
  // Staged, not started: the isolate starts on the first request, and the
  // rest queue meanwhile.
  executor.stage("batch", version).await.expect("stage");
  let requests = (0..300).map(|i| {
    let executor = executor.clone();
    async move {
      let request = WorkerRequest {
        method: http::Method::GET,
        url: format!("http://batch.localhost/{i}"),
        headers: http::HeaderMap::new(),
        body: RequestBody::Empty,
        cf: None,
        scheduled: None,
        rpc: None,
        entrypoint: None,
        limits: Default::default(),
      };
      let response = executor.dispatch("batch", request).await.expect("answer");
      match response.body {
        ResponseBody::Full(bytes) => assert_eq!(bytes, format!("/{i}").as_bytes()),
        other => panic!("expected a whole body, got {other:?}"),
      }
    }
  });
  tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(requests))
    .await
    .expect("every request answered");
}

/// Requests still queued for an isolate that is stopped (here by its CPU
/// limit) never reached JS, so they go to a fresh isolate instead of
/// failing with it.
#[tokio::test(flavor = "multi_thread")]
async fn requests_queued_for_a_stopped_isolate_go_to_a_fresh_one() {
  let dir = tempfile::tempdir().expect("tempdir");
  let entry = dir.path().join("worker.js");
  std::fs::write(
    &entry,
    // A slow top level, so that all 100 requests queue before the first batch.
    "await new Promise((resolve) => setTimeout(resolve, 300));\n\
     export default { fetch(r) {\n  if (r.url.endsWith('/spin')) while (true) {}\n  return new Response('ok');\n} };\n",
  )
  .expect("worker");
  let version = WorkerVersion {
    bundle: Arc::new(WorkerBundle::load(&entry).expect("bundle")),
    env: Arc::new(WorkerEnv::default()),
    limits: Default::default(),
  };
  let executor = spawn_executor("requeue").expect("executor");
  executor.stage("requeue", version).await.expect("stage");
  // All queue while the isolate starts; its first batch (64) holds the
  // runaway and fails with it; the rest never reach that isolate's JS.
  let requests = (0..100).map(|i| {
    let executor = executor.clone();
    async move {
      let path = if i == 0 { "spin" } else { "ok" };
      let request = WorkerRequest {
        method: http::Method::GET,
        url: format!("http://requeue.localhost/{path}"),
        headers: http::HeaderMap::new(),
        body: RequestBody::Empty,
        cf: None,
        scheduled: None,
        rpc: None,
        entrypoint: None,
        limits: Default::default(),
      };
      executor
        .dispatch("requeue", request)
        .await
        .expect("answer")
        .status
        .as_u16()
    }
  });
  let statuses = tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(requests))
    .await
    .expect("every request answered");
  let served = statuses.iter().filter(|&&s| s == 200).count();
  let stopped = statuses.iter().filter(|&&s| s == 503).count();
  assert_eq!((served, stopped), (36, 64), "statuses: {statuses:?}");
}
