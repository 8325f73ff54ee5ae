//! Service bindings (`[[services]]`): a worker's `env.AUTH.fetch()` runs
//! on another worker of the same node, through `outpost edge --local` on
//! `fixtures/services` and through a control plane and an edge.

use serde_json::{Value, json};

use crate::cluster::{Process, http_address, start};
use crate::npm_projects::{control_and_edge, deploy_folder};
use crate::tail::Tail;
use crate::util::{DevProcess, copy_tree, fixtures_dir};

/// `outpost edge --local fixtures/services`, and its address.
fn start_folder() -> (Process, String) {
  let folder = fixtures_dir().join("services");
  let folder = folder.to_str().expect("utf-8 path");
  let (process, lines) = start(
    &["edge", "--local", folder, "--port", "0", "--threads", "2"],
    "at http://",
  );
  (process, http_address(&lines))
}

async fn json_of(response: reqwest::Response) -> Value {
  let text = response.text().await.expect("a body");
  serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_binding_reaches_the_bound_worker_with_the_callers_ray() {
  let (_edge, url) = start_folder();
  let client = reqwest::Client::new();

  let answer = json_of(
    client
      .get(format!("{url}/front/page?q=1"))
      .send()
      .await
      .expect("an answer"),
  )
  .await;
  assert_eq!(answer["status"], 201, "{answer}");
  assert_eq!(answer["auth"]["method"], "GET");
  assert_eq!(answer["auth"]["url"], format!("{url}/front/page?q=1"));
  let ray = answer["ray"].as_str().expect("the caller's ray");
  assert_eq!(answer["auth"]["ray"], ray, "one ray for both workers");

  // A body streams through to the callee.
  let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 16 * 1024]));
  let answer = json_of(
    client
      .post(format!("{url}/front/upload"))
      .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
      .send()
      .await
      .expect("an answer"),
  )
  .await;
  assert_eq!(answer["auth"]["method"], "POST");
  assert_eq!(answer["auth"]["bytes"], 64 * 16 * 1024);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relayed_answer_streams_back_with_its_status_and_headers() {
  let (_edge, url) = start_folder();
  let client = reqwest::Client::new();
  let response = client
    .get(format!("{url}/relay/stream"))
    .send()
    .await
    .expect("an answer");
  assert_eq!(response.status(), 200);
  assert_eq!(response.headers()["x-from"], "auth");
  assert_eq!(response.text().await.expect("text"), "one two three");
  let response = client
    .post(format!("{url}/relay/echo"))
    .body("x".repeat(100_000))
    .send()
    .await
    .expect("an answer");
  assert_eq!(response.status(), 201);
  let answer = json_of(response).await;
  assert_eq!(answer["bytes"], 100_000);
  assert_eq!(answer["url"], format!("{url}/relay/echo"));
  let head = client
    .head(format!("{url}/relay/x"))
    .send()
    .await
    .expect("an answer");
  assert_eq!(head.status(), 201);
  assert_eq!(head.content_length().unwrap_or(0), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn service_calls_are_bounded_in_depth_and_counted_as_subrequests() {
  let (_edge, url) = start_folder();
  let text = |path: &'static str| {
    let url = format!("{url}{path}");
    async move {
      let response = reqwest::get(url).await.expect("an answer");
      (
        response.status().as_u16(),
        response.text().await.expect("text"),
      )
    }
  };
  // A worker bound to itself goes 16 deep, then its call is refused; a
  // client's depth header counts for nothing.
  let (status, body) = text("/recurse/").await;
  assert_eq!(status, 200);
  assert_eq!(
    body, "stopped at 16: service bindings nested more than 16 deep",
    "{body}"
  );
  let forged = reqwest::Client::new()
    .get(format!("{url}/recurse/"))
    .header("x-outpost-service-depth", "16")
    .send()
    .await
    .expect("an answer")
    .text()
    .await
    .expect("text");
  assert!(forged.starts_with("stopped at 16:"), "{forged}");
  // A binding to a worker the node does not run fails the call, clearly.
  let (status, body) = text("/lonely/").await;
  assert_eq!(status, 502);
  assert!(
    body.starts_with("TypeError")
      && body.contains("\"no-such-worker\" is not running on this node"),
    "{body}"
  );
  // The marker header set by worker code (or a client) is a plain header.
  let (status, body) = text("/forger/").await;
  assert_eq!(status, 200);
  assert!(
    body.starts_with("plain fetch: fetch to http://127.0.0.1/ refused"),
    "{body}"
  );
  // Each call is a subrequest of the request making it.
  let (status, body) = text("/greedy/").await;
  assert_eq!(status, 200);
  let seen: Value = serde_json::from_str(&body).expect("JSON");
  assert_eq!(seen[0], 201);
  assert_eq!(seen[1], 201);
  assert!(
    seen[2]
      .as_str()
      .is_some_and(|m| m.starts_with("Too many subrequests")),
    "{seen}"
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployed_worker_reaches_its_bound_worker_on_the_edge() {
  let data = tempfile::tempdir().expect("temp dir");
  let (control, _edge, url) = control_and_edge(data.path());
  // `auth` through the API; `front` by `outpost deploy` from its folder,
  // whose wrangler.toml declares the binding.
  let auth =
    std::fs::read_to_string(fixtures_dir().join("services/auth/worker.js")).expect("auth worker");
  let bundle = json!({
    "main": "worker.js",
    "modules": { "worker.js": auth },
    "limits": { "cpu_ms": 1000 },
  });
  let (status, body) = control
    .call(
      reqwest::Method::POST,
      "/workers/auth/versions",
      Some(bundle),
    )
    .await;
  assert!(status == 200 || status == 201, "{body}");
  control.deploy("auth", Some(json!({ "version": 1 }))).await;
  let project = data.path().join("front");
  copy_tree(&fixtures_dir().join("services/front"), &project);
  deploy_folder(&control, &project);
  let answer = loop_until_served(&format!("{url}/front/")).await;
  assert_eq!(answer["status"], 201, "{answer}");
  assert_eq!(answer["auth"]["ray"], answer["ray"]);

  // `outpost tail auth` shows the callee's side under the caller's ray.
  let tail = Tail::start_for(&control, "auth", &[]);
  let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
  loop {
    let answer = loop_until_served(&format!("{url}/front/")).await;
    let ray = answer["ray"].as_str().expect("a ray").to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let events = tail.events();
    if events
      .iter()
      .any(|e| e["type"] == "request" && e["ray"] == ray.as_str())
    {
      break;
    }
    assert!(
      std::time::Instant::now() < deadline,
      "the tail never showed ray {ray}: {events:#?}"
    );
  }
}

/// `url`'s JSON once it is served (the edge applies deployments as they
/// arrive).
async fn loop_until_served(url: &str) -> Value {
  let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
  loop {
    if let Ok(response) = reqwest::get(url).await
      && response.status() == 200
    {
      return json_of(response).await;
    }
    assert!(std::time::Instant::now() < deadline, "{url} is not served");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
  }
}

#[tokio::test(flavor = "multi_thread")]
async fn outpost_dev_runs_several_workers_bound_to_one_another() {
  let services = fixtures_dir().join("services");
  // `outpost dev front auth`: front gets every request and reaches auth.
  let dev = DevProcess::start(&services, &["front", "auth"]).await;
  let answer = json_of(
    reqwest::get(format!("{}page", dev.url))
      .await
      .expect("an answer"),
  )
  .await;
  assert_eq!(answer["status"], 201, "{answer}");
  assert_eq!(answer["auth"]["ray"], answer["ray"]);
  assert!(dev.stderr().contains("also serving"), "{}", dev.stderr());
  drop(dev);

  // Without auth, the binding is warned about, and a call fails clearly.
  let dev = DevProcess::start(&services, &["front"]).await;
  let stderr = dev
    .wait_for_stderr(
      "is bound to worker \"auth\"",
      std::time::Duration::from_secs(5),
    )
    .await;
  assert!(
    stderr.contains("AUTH is bound to worker \"auth\", which this dev server does not run"),
    "{stderr}"
  );
  let status = reqwest::get(dev.url.clone())
    .await
    .expect("an answer")
    .status();
  assert_eq!(status, 500, "front's call to auth throws");
}

#[tokio::test(flavor = "multi_thread")]
async fn rpc_reaches_entrypoint_methods_with_structured_clones_and_errors_and_named_entrypoints() {
  let (_edge, url) = start_folder();
  let answer = json_of(
    reqwest::get(format!("{url}/calc/"))
      .await
      .expect("an answer"),
  )
  .await;
  assert_eq!(
    answer,
    json!({
      "sum": 5,
      "date": 0,
      "map": 1,
      "bytes": [1, 2, 3],
      "nested": { "list": [1, "two", null] },
      "greeting": "hello from math",
      "thrown": "true RangeError: out of range on purpose",
      "missing": "TypeError: The RPC receiver does not implement the method \"nothing\".",
      "http": "math over HTTP",
      "counted": "1 2 3 4 5 ",
      "summed": "total: 5050!",
      "twoStreams": "TypeError: env.MATH.sum(): only one argument may be a ReadableStream",
      "admin": "admin of hello from math",
      "adminHttp": "admin over HTTP: POST /panel",
      "nobody": "TypeError: The worker has no entrypoint named \"Nobody\": export a class that extends WorkerEntrypoint",
    })
  );
  // A client cannot call a method: over HTTP, math is its fetch().
  let text = reqwest::get(format!("{url}/math/add"))
    .await
    .expect("an answer")
    .text()
    .await
    .expect("text");
  assert_eq!(text, "math over HTTP");
}
