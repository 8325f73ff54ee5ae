//! Limits: a runaway worker is stopped with a clear answer, its neighbours
//! keep serving, and its next request gets a fresh isolate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::util::{TestServer, copy_fixture, expected, get_text, http1};

async fn start() -> (tempfile::TempDir, TestServer, Value) {
  let dir = copy_fixture("limits");
  let server = TestServer::folder(dir.path()).await;
  (dir, server, expected("limits"))
}

fn url(server: &TestServer, worker: &Value, path: Option<&str>) -> String {
  let path = path.or(worker["path"].as_str()).unwrap_or("/");
  server.url(&format!(
    "/{}{}",
    worker["worker"].as_str().expect("worker"),
    path
  ))
}

/// A GET that a limit, not the worker, must answer, and well within 20 s.
async fn get_answered_by_a_limit(url: String) -> reqwest::Response {
  tokio::time::timeout(Duration::from_secs(20), http1().get(url).send())
    .await
    .expect("a limit answers well before 20 s")
    .expect("request")
}

async fn assert_stopped(response: reqwest::Response, want: &Value) {
  assert_eq!(
    response.status().as_u16(),
    want["status"].as_u64().expect("status") as u16
  );
  assert_eq!(
    response
      .headers()
      .get("outpost-error")
      .map(|v| v.to_str().expect("ascii")),
    want["outpost_error"].as_str()
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_loop_gets_cpu_limit_while_a_neighbour_keeps_answering() {
  let (_dir, server, exp) = start().await;
  let (cpu, neighbour) = (&exp["cpu"], &exp["neighbour"]);
  let spin = cpu["worker"].as_str().expect("worker");
  let steady = neighbour["worker"].as_str().expect("worker");
  assert_ne!(
    server.dispatcher.executor_index(spin),
    server.dispatcher.executor_index(steady),
    "the test needs the two workers on different executor threads; rename one"
  );
  let client = http1();

  // Ask the neighbour over and over while the loop runs.
  let spinning = Arc::new(AtomicBool::new(true));
  let answered = Arc::new(AtomicUsize::new(0));
  let neighbour_url = url(&server, neighbour, None);
  let poller = {
    let (client, spinning, answered) = (client.clone(), spinning.clone(), answered.clone());
    let want = neighbour["body"].as_str().expect("body").to_owned();
    tokio::spawn(async move {
      while spinning.load(Ordering::Acquire) {
        assert_eq!(get_text(&client, &neighbour_url).await, want);
        answered.fetch_add(1, Ordering::AcqRel);
      }
    })
  };

  let response = client
    .get(url(&server, cpu, None))
    .send()
    .await
    .expect("request");
  let during = answered.load(Ordering::Acquire);
  spinning.store(false, Ordering::Release);
  poller.await.expect("the neighbour always answered");
  assert_stopped(response, cpu).await;
  assert!(
    during > 0,
    "the neighbour answered nothing while the loop ran"
  );

  let after = get_text(&client, &url(&server, cpu, Some("/"))).await;
  assert_eq!(
    after,
    cpu["after"].as_str().expect("after"),
    "a fresh isolate serves next"
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_time_is_limited_per_request_across_stretches() {
  let (_dir, server, exp) = start().await;
  let summed = &exp["cpu_summed"];
  let client = http1();
  let within = summed["within_budget"].as_str().expect("within_budget");
  let answer = get_text(&client, &url(&server, summed, Some(within))).await;
  assert_eq!(answer, summed["after"].as_str().expect("after"));

  let response = client
    .get(url(&server, summed, None))
    .send()
    .await
    .expect("request");
  assert_stopped(response, summed).await;
  let answer = get_text(&client, &url(&server, summed, Some(within))).await;
  assert_eq!(answer, summed["after"].as_str().expect("after"));
}

#[tokio::test(flavor = "multi_thread")]
async fn unbounded_allocation_gets_memory_limit_and_the_node_survives() {
  let (_dir, server, exp) = start().await;
  let memory = &exp["memory"];
  let client = http1();
  let paths = memory["paths"].as_array().expect("paths");
  for path in paths.iter().map(|p| p.as_str().expect("path")) {
    let response = client
      .get(url(&server, memory, Some(path)))
      .send()
      .await
      .expect("request");
    assert_stopped(response, memory).await;
    let after = get_text(&client, &url(&server, memory, Some("/"))).await;
    assert_eq!(
      after,
      memory["after"].as_str().expect("after"),
      "after {path}"
    );
  }
  let neighbour = &exp["neighbour"];
  assert_eq!(
    get_text(&client, &url(&server, neighbour, None)).await,
    neighbour["body"].as_str().expect("body")
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_never_answers_gets_wall_limit() {
  let (_dir, server, exp) = start().await;
  let wall = &exp["wall"];
  let response = get_answered_by_a_limit(url(&server, wall, None)).await;
  assert_stopped(response, wall).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_after_the_wall_limit_is_dropped_and_the_worker_serves_on() {
  let (_dir, server, exp) = start().await;
  let wall = &exp["wall"];
  let client = http1();
  let response = client
    .get(url(&server, wall, Some("/late")))
    .send()
    .await
    .expect("request");
  assert_stopped(response, wall).await;
  // Let the late answer come and be dropped; the isolate goes on serving.
  tokio::time::sleep(Duration::from_millis(500)).await;
  assert_eq!(
    get_text(&client, &url(&server, wall, Some("/quick"))).await,
    "quick"
  );
  let response = client
    .get(url(&server, wall, Some("/late")))
    .send()
    .await
    .expect("request");
  assert_stopped(response, wall).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_top_level_that_never_finishes_is_given_up_after_the_wall_limit() {
  let (_dir, server, exp) = start().await;
  let stuck = &exp["stuck_start"];
  let response = get_answered_by_a_limit(url(&server, stuck, None)).await;
  assert_eq!(
    response.status().as_u16(),
    stuck["status"].as_u64().expect("status") as u16
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn eval_is_refused_unless_the_worker_opts_in() {
  let (_dir, server, exp) = start().await;
  let client = http1();
  for case in ["eval_refused", "eval_allowed"] {
    let want = &exp[case];
    assert_eq!(
      get_text(&client, &url(&server, want, None)).await,
      want["body"].as_str().expect("body"),
      "{case}"
    );
  }
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_in_flight_and_queue_bounds_requests_get_503() {
  let (_dir, server, exp) = start().await;
  let overload = &exp["overload"];
  let client = http1();
  let url = url(&server, overload, Some("/"));
  let concurrent = overload["concurrent"].as_u64().expect("concurrent") as usize;
  let requests = (0..concurrent).map(|_| {
    let (client, url) = (client.clone(), url.clone());
    async move { client.get(url).send().await.expect("request") }
  });
  let responses = futures::future::join_all(requests).await;
  let mut served = 0;
  for response in responses {
    if response.status() == 200 {
      served += 1;
      assert_eq!(
        response.text().await.expect("body"),
        overload["body"].as_str().expect("body")
      );
    } else {
      assert_stopped(response, overload).await;
    }
  }
  assert_eq!(
    served,
    overload["served"].as_u64().expect("served") as usize
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn webassembly_memory_counts_against_the_memory_limit() {
  let (_dir, server, _) = start().await;
  let client = http1();
  let mut most = 0;
  let mut stopped = 0;
  for _ in 0..12 {
    let response = client
      .get(server.url("/wasm-hoard/"))
      .send()
      .await
      .expect("request");
    if response.status() == 503 {
      stopped += 1;
      continue;
    }
    let held: u64 = response
      .text()
      .await
      .expect("body")
      .parse()
      .expect("MiB held");
    most = most.max(held);
  }
  // 48 MiB allowed: the isolate goes once a request takes it past that, and
  // its successor starts from nothing.
  assert!(most <= 64, "a worker held {most} MiB of wasm memory");
  assert!(
    crate::util::count_in_logs("isolate terminated: memory-limit") > 0 || stopped > 0,
    "the limit was enforced"
  );
}
