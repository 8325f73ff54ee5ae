//! Outbound `fetch()` from workers: a real origin on loopback, reached when
//! the allow-list opens it, refused by address otherwise, with redirects,
//! streaming both ways, abort, the subrequest limit and the timeout.

use std::time::Duration;

use outpost_runtime::{ExecutorOptions, OutboundPolicy, WorkerLimits};
use serde_json::Value;

use crate::origin::Origin;
use crate::util::{TestServer, fixture_entry, get_text, http1, limits_allowing, wait_for_log};

/// Serves the `outbound` fixture with `allow` opened to its `fetch()`.
async fn worker_allowing(allow: &[&str]) -> TestServer {
  let limits = WorkerLimits {
    max_subrequests: 5,
    subrequest_timeout: Duration::from_millis(500),
    ..limits_allowing(allow)
  };
  TestServer::fixture_with("outbound", limits).await
}

/// `url`, encoded for a query string.
fn encoded(url: &str) -> String {
  url::form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

/// GETs `path` on the worker with `url` as its `url` parameter.
async fn open(server: &TestServer, path: &str, url: &str, extra: &str) -> reqwest::Response {
  http1()
    .get(server.url(&format!("{path}?url={}{extra}", encoded(url))))
    .send()
    .await
    .expect("the worker answers")
}

/// Asks the worker to call `path` with `url` as its target, and returns the
/// JSON it answers.
async fn ask(server: &TestServer, path: &str, url: &str, extra: &str) -> Value {
  let response = open(server, path, url, extra).await;
  let text = response.text().await.expect("a body");
  serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn error_of(answer: &Value) -> &str {
  answer["error"]
    .as_str()
    .unwrap_or_else(|| panic!("expected an error: {answer}"))
}

#[tokio::test]
async fn an_allowed_origin_is_reached_and_redirects_follow_the_mode() {
  let origin = Origin::start().await;
  let server = worker_allowing(&["localhost"]).await;

  let hello = ask(&server, "/get", &origin.by_name("/hello"), "").await;
  assert_eq!(hello["status"], 200, "{hello}");
  assert_eq!(hello["body"], "hello from origin");

  let headers = ask(&server, "/get", &origin.by_name("/headers"), "").await;
  let seen = headers["body"].as_str().expect("a body");
  assert!(seen.starts_with("user-agent: Outpost/"), "{seen}");

  let to_hello = format!(
    "/redirect?status=301&to={}",
    encoded(&origin.by_name("/hello"))
  );
  let followed = ask(&server, "/get", &origin.by_name(&to_hello), "").await;
  assert_eq!(followed["status"], 200, "{followed}");
  assert_eq!(followed["redirected"], true);
  assert_eq!(followed["url"], origin.by_name("/hello"));
  assert_eq!(followed["body"], "hello from origin");

  let manual = ask(
    &server,
    "/get",
    &origin.by_name(&to_hello),
    "&redirect=manual",
  )
  .await;
  assert_eq!(manual["status"], 301, "{manual}");
  assert_eq!(manual["location"], origin.by_name("/hello"));

  let refused = ask(
    &server,
    "/get",
    &origin.by_name(&to_hello),
    "&redirect=error",
  )
  .await;
  assert!(error_of(&refused).starts_with("TypeError"), "{refused}");
}

#[tokio::test]
async fn bodies_stream_both_ways() {
  let origin = Origin::start().await;
  let server = worker_allowing(&["localhost"]).await;

  // The request body is a stream: sent chunked, without a length.
  let upload = ask(&server, "/upload", &origin.by_name("/echo"), "&chunks=3").await;
  assert_eq!(upload["body"], "chunk 0;chunk 1;chunk 2;", "{upload}");
  let sized = ask(&server, "/upload", &origin.by_name("/headers"), "&chunks=3").await;
  let seen = sized["body"].as_str().expect("a body");
  assert!(seen.contains("transfer-encoding: chunked"), "{seen}");

  // The response streams through: its first chunk reaches the client while
  // the origin still holds the second back.
  let mut response = open(&server, "/pass-through", &origin.by_name("/gated"), "").await;
  assert_eq!(response.status(), 200);
  let first = tokio::time::timeout(Duration::from_secs(10), response.chunk())
    .await
    .expect("the first chunk arrives while the second is held back")
    .expect("a readable body");
  assert_eq!(first.as_deref(), Some(&b"first\n"[..]));
  origin.gate.notify_one();
  let rest = response.text().await.expect("the rest of the body");
  assert_eq!(rest, "second\n");
}

#[tokio::test]
async fn abort_and_timeout_end_a_subrequest() {
  let origin = Origin::start().await;
  let server = worker_allowing(&["localhost"]).await;

  let aborted = ask(&server, "/abort", &origin.by_name("/slow"), "&after_ms=50").await;
  assert!(error_of(&aborted).starts_with("AbortError"), "{aborted}");

  // The worker's subrequest timeout is 500 ms; /slow answers after a minute.
  let timed_out = ask(&server, "/get", &origin.by_name("/slow"), "").await;
  let error = error_of(&timed_out);
  assert!(error.contains("timed out"), "{error}");
}

#[tokio::test]
async fn the_subrequest_limit_counts_per_request() {
  let origin = Origin::start().await;
  let server = worker_allowing(&["localhost"]).await;
  for _ in 0..2 {
    // The limit is 5; each incoming request starts from zero.
    let many = ask(&server, "/many", &origin.by_name("/hello"), "&times=7").await;
    assert_eq!(many["done"], 5, "{many}");
    let error = many["error"].as_str().expect("the sixth fetch fails");
    assert!(error.contains("Too many subrequests"), "{error}");
  }
}

#[tokio::test]
async fn fetch_is_refused_in_the_global_scope() {
  let server = worker_allowing(&["localhost"]).await;
  let text = get_text(&http1(), &server.url("/global-scope")).await;
  assert!(
    text.contains("only be called while handling a request"),
    "{text}"
  );
}

#[tokio::test]
async fn private_and_special_addresses_are_refused() {
  let origin = Origin::start().await;
  let server = worker_allowing(&[]).await;
  let port = origin.addr.port();
  for (url, kind) in [
    (
      format!("http://127.0.0.1:{port}/hello"),
      "127.0.0.1 is a loopback address",
    ),
    (
      "http://10.1.2.3/".to_owned(),
      "10.1.2.3 is a private address",
    ),
    (
      "http://169.254.169.254/latest/meta-data/".to_owned(),
      "169.254.169.254 is a link-local address",
    ),
    (
      format!("http://[::1]:{port}/hello"),
      "::1 is a loopback address",
    ),
    (
      "http://[::ffff:192.168.0.1]/".to_owned(),
      "192.168.0.1 is a private address",
    ),
    (
      "http://100.64.0.1/".to_owned(),
      "100.64.0.1 is a shared (CGNAT) address",
    ),
    // A host name is checked on what it resolves to.
    (
      origin.by_name("/hello"),
      "localhost resolves to 127.0.0.1, a loopback address",
    ),
  ] {
    let answer = ask(&server, "/get", &url, "").await;
    let error = error_of(&answer);
    assert!(error.starts_with("TypeError: fetch to"), "{url}: {error}");
    assert!(error.contains(kind), "{url}: {error}");
  }
}

#[tokio::test]
async fn a_redirect_to_a_private_address_is_refused() {
  let origin = Origin::start().await;
  // The origin is allowed by name, not by address.
  let server = worker_allowing(&["localhost"]).await;
  let to_private: String = encoded(&origin.by_address("/hello"));
  let answer = ask(
    &server,
    "/get",
    &origin.by_name(&format!("/redirect?to={to_private}")),
    "",
  )
  .await;
  let error = error_of(&answer);
  assert!(error.contains("127.0.0.1 is a loopback address"), "{error}");

  // Opening the address too lets the same redirect through.
  let server = worker_allowing(&["localhost", "127.0.0.0/8"]).await;
  let answer = ask(
    &server,
    "/get",
    &origin.by_name(&format!("/redirect?to={to_private}")),
    "",
  )
  .await;
  assert_eq!(answer["body"], "hello from origin", "{answer}");
}

#[test]
fn allow_list_entries_are_checked() {
  for good in [
    "localhost",
    "*.corp.example",
    "10.0.0.0/8",
    "::1",
    "[fd00::1]",
    "fd00::/8",
  ] {
    assert!(OutboundPolicy::parse(&[good]).is_ok(), "{good}");
  }
  for bad in ["", "10.0.0.0/33", "not a host", "http://x", "a..b"] {
    let err = OutboundPolicy::parse(&[bad]).expect_err(bad).to_string();
    assert!(
      err.contains("is not an outbound allow-list entry"),
      "{bad}: {err}"
    );
  }
  let policy = OutboundPolicy::parse(&["*.corp.example", "10.1.0.0/16"]).expect("valid");
  assert!(policy.allows_host("api.corp.example"));
  assert!(policy.allows_host("API.Corp.Example."));
  assert!(!policy.allows_host("corp.example"));
  assert!(!policy.allows_host("evilcorp.example"));
  assert!(policy.check_ip("10.1.200.3".parse().expect("ip")).is_ok());
  assert!(policy.check_ip("10.2.0.1".parse().expect("ip")).is_err());
  assert!(
    policy
      .check_ip("93.184.215.14".parse().expect("ip"))
      .is_ok()
  );
  assert!(policy.check_ip("2606:4700::1".parse().expect("ip")).is_ok());
  for refused in [
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "fe80::1",
    "fc00::1",
    "64:ff9b::7f00:1",
    "2002:7f00:1::",
  ] {
    assert!(
      policy.check_ip(refused.parse().expect("ip")).is_err(),
      "{refused}"
    );
  }
}

#[tokio::test]
async fn outpost_toml_opens_the_allow_list_per_worker() {
  let origin = Origin::start().await;
  let root = tempfile::tempdir().expect("temp dir");
  let worker = std::fs::read_to_string(fixture_entry("outbound")).expect("fixture");
  for (name, config) in [
    ("opened", "[outbound]\nallow = [\"localhost\"]\n"),
    ("closed", ""),
    ("misconfigured", "[outbound]\nallow = [\"10.0.0.0/99\"]\n"),
  ] {
    let dir = root.path().join(name);
    std::fs::create_dir(&dir).expect("worker folder");
    std::fs::write(dir.join("worker.js"), &worker).expect("worker.js");
    std::fs::write(dir.join("outpost.toml"), config).expect("outpost.toml");
  }
  let server = TestServer::folder(root.path()).await;

  let opened = ask(&server, "/opened/get", &origin.by_name("/hello"), "").await;
  assert_eq!(opened["body"], "hello from origin", "{opened}");
  let closed = ask(&server, "/closed/get", &origin.by_name("/hello"), "").await;
  assert!(error_of(&closed).contains("loopback address"), "{closed}");
  assert!(
    wait_for_log(
      "is not an outbound allow-list entry",
      Duration::from_secs(5)
    )
    .await,
    "the bad entry is reported"
  );
  let status = http1()
    .get(server.url("/misconfigured/get"))
    .send()
    .await
    .expect("the node answers")
    .status();
  assert_eq!(status, 404, "a worker with a bad config is not served");
}

#[tokio::test]
async fn html_rewriter_rewrites_a_page_as_it_streams() {
  let origin = Origin::start().await;
  let server = TestServer::fixture_with("html-rewriter", limits_allowing(&["localhost"])).await;
  let mut response = open(&server, "/", &origin.by_name("/page"), "").await;
  assert_eq!(response.status(), 200);
  assert_eq!(
    response.headers()["content-type"],
    "text/html; charset=utf-8"
  );

  // The rewritten first half arrives while the origin holds the second back.
  let mut head = String::new();
  while !head.contains("first half") {
    let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
      .await
      .expect("the first half arrives before the origin sends the rest")
      .expect("a readable body")
      .expect("more body");
    head.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
  }
  assert!(head.contains("<title>New title</title>"), "{head}");
  assert!(head.contains("href=\"http://new.example/a\""), "{head}");
  assert!(!head.contains("second half"), "{head}");

  origin.gate.notify_one();
  let tail = response.text().await.expect("the rest");
  assert_eq!(
    tail,
    "<p>second half</p><footer>1 link(s) rewritten</footer></body></html>"
  );
}

#[tokio::test]
async fn the_nodes_allow_list_opens_every_worker() {
  let origin = Origin::start().await;
  let root = tempfile::tempdir().expect("temp dir");
  let worker = std::fs::read_to_string(fixture_entry("outbound")).expect("fixture");
  std::fs::create_dir(root.path().join("plain")).expect("worker folder");
  std::fs::write(root.path().join("plain").join("worker.js"), &worker).expect("worker.js");
  let node = OutboundPolicy::parse(&["localhost"]).expect("valid");
  let server = TestServer::folder_opening(root.path(), ExecutorOptions::default(), node).await;
  let answer = ask(&server, "/plain/get", &origin.by_name("/hello"), "").await;
  assert_eq!(answer["body"], "hello from origin", "{answer}");
  let refused = ask(&server, "/plain/get", &origin.by_address("/hello"), "").await;
  assert!(error_of(&refused).contains("loopback"), "{refused}");
}
