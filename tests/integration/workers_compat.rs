//! Workers globals (`scheduler`, `crypto.subtle.timingSafeEqual`,
//! `navigator.userAgent`, `request.cf`), `cloudflare:workers`, and the Node
//! built-ins that need no flag, through fixtures/workers-compat.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{
  TestServer, TestServerOptions, count_in_logs, fixture_entry, http1, wait_for_log,
};

async fn serve() -> TestServer {
  TestServer::start(
    &fixture_entry("workers-compat"),
    TestServerOptions {
      vars: vec![("GREETING".into(), "hi".into())],
      ..Default::default()
    },
  )
  .await
}

async fn json_at(client: &reqwest::Client, url: &str) -> Value {
  let response = client.get(url).send().await.expect("request");
  assert_eq!(response.status(), 200, "{url}");
  serde_json::from_str(&response.text().await.expect("body")).expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudflare_workers_env_and_entrypoint_classes() {
  let server = serve().await;
  let body = json_at(&http1(), &server.url("/")).await;
  assert_eq!(
    body,
    json!({ "atStart": "hi", "fromThis": "hi", "hasCtx": true }),
    "env is there at the top level and on the entrypoint instance"
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn node_events_behaves_as_node_does() {
  let server = serve().await;
  let body = json_at(&http1(), &server.url("/events")).await;
  assert_eq!(
    body["seen"],
    json!(["first:1", "on:1", "once:1", "first:2", "on:2", "first:3"])
  );
  assert_eq!(body["unhandled"], "boom", "an unheard error event throws");
  assert_eq!(
    body["args"],
    json!(["a", "b"]),
    "once() resolves with the arguments"
  );
  assert_eq!(body["legacy"], "ok", "EventEmitter.call(this) works");
  assert_eq!(body["sameDefault"], true);
  assert_eq!(body["subclass"], true);
  assert_eq!(body["count"], 1);
  assert_eq!(body["names"], json!(["x"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn async_local_storage_follows_each_request_across_awaits() {
  let server = serve().await;
  let client = http1();
  // The first waits longer, so the two interleave in one isolate.
  let (slow_url, fast_url) = (
    server.url("/als?id=slow&delay=60"),
    server.url("/als?id=fast&delay=5"),
  );
  let (slow, fast) = tokio::join!(json_at(&client, &slow_url), json_at(&client, &fast_url));
  assert_eq!(
    slow,
    json!({ "id": "slow", "inner": "slow-inner", "outside": null })
  );
  assert_eq!(
    fast,
    json!({ "id": "fast", "inner": "fast-inner", "outside": null })
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn diagnostics_channel_publishes_to_subscribers() {
  let server = serve().await;
  let body = json_at(&http1(), &server.url("/channel")).await;
  assert_eq!(
    body,
    json!({
      "got": [["outpost:test", 1]],
      "had": true,
      "after": false,
      "inside": "from-3",
      "traced": ["start", "end"],
      "result": 5,
      "traced_async": { "events": ["start", "end", "asyncStart", "asyncEnd"], "value": 42 },
    })
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_globals_are_there() {
  let server = serve().await;
  let body = json_at(&http1(), &server.url("/globals")).await;
  assert_eq!(
    body,
    json!({
      "userAgent": "Cloudflare-Workers",
      "waited": true,
      "aborted": "AbortError",
      "equal": true,
      "unequal": false,
      "buffers": true,
      "mismatch": "RangeError",
    })
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn request_cf_describes_the_request() {
  let server = serve().await;
  let body = json_at(&http1(), &server.url("/cf")).await;
  assert_eq!(body["cf"]["colo"], "local");
  assert_eq!(body["cf"]["httpProtocol"], "HTTP/1.1");
  assert_eq!(body["cf"]["tlsVersion"], "");
  assert!(
    body["cf"]["clientTcpRtt"].is_u64(),
    "the kernel's RTT of the connection: {body}"
  );
  assert_eq!(
    body["made"],
    Value::Null,
    "a Request the worker makes has no cf"
  );

  let h2 = reqwest::Client::builder()
    .http2_prior_knowledge()
    .build()
    .expect("client");
  let body = json_at(&h2, &server.url("/cf")).await;
  assert_eq!(body["cf"]["httpProtocol"], "HTTP/2");
}

#[tokio::test(flavor = "multi_thread")]
async fn console_output_is_plain_text() {
  let server = serve().await;
  let response = http1()
    .get(server.url("/log"))
    .send()
    .await
    .expect("request");
  assert_eq!(response.text().await.expect("body"), "logged");
  assert!(
    wait_for_log("coloured line { n: 1 }", Duration::from_secs(5)).await,
    "the line is logged without its colour codes"
  );
  assert_eq!(count_in_logs("[32mcoloured"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn web_streams_text_bytes_and_transforms_as_workerd_serves_them() {
  let server = TestServer::fixture("web-streams").await;
  let client = http1();
  let words = "lorem ipsum dolor sit amet lorem ipsum ";
  for (path, want) in [
    ("/sync", words.to_uppercase()),
    ("/async", words.to_uppercase()),
    ("/bytes/sync", words.to_owned()),
    ("/bytes/async", words.to_owned()),
  ] {
    let response = client.get(server.url(path)).send().await.expect("request");
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(response.text().await.expect("body"), want, "{path}");
  }
  let missing = client.get(server.url("/")).send().await.expect("request");
  assert_eq!(missing.status(), 404);
}
