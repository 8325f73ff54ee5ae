//! Fixtures whose expected.json describes one request and its response.

use serde_json::Value;

use crate::util::{TestServer, TestServerOptions, expected, fixture_entry, http1};

/// Checks `exp["status"]`, and each of `exp["headers"]` (`null`: absent).
fn assert_status_and_headers(label: &str, response: &reqwest::Response, exp: &Value) {
  assert_eq!(
    response.status().as_u16(),
    exp["status"].as_u64().expect("status") as u16,
    "{label}: status"
  );
  for (header, value) in exp["headers"].as_object().into_iter().flatten() {
    assert_eq!(
      response
        .headers()
        .get(header)
        .map(|v| v.to_str().expect("ascii header")),
      value.as_str(),
      "{label}: header {header}"
    );
  }
}

async fn check_fixture(name: &str, client: reqwest::Client) {
  let exp = expected(name);
  let vars = exp["vars"]
    .as_object()
    .map(|vars| {
      vars
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect()
    })
    .unwrap_or_default();
  let server = TestServer::start(
    &fixture_entry(name),
    TestServerOptions {
      vars,
      ..Default::default()
    },
  )
  .await;

  let request = &exp["request"];
  let method = request["method"]
    .as_str()
    .unwrap_or("GET")
    .parse()
    .expect("method");
  let mut builder = client.request(method, server.url(request["path"].as_str().unwrap_or("/")));
  for (header, value) in request["headers"].as_object().into_iter().flatten() {
    builder = builder.header(header, value.as_str().expect("header values are strings"));
  }
  if let Some(body) = request["body"].as_str() {
    builder = builder.body(body.to_owned());
  }
  let response = builder.send().await.expect("request succeeds");

  assert_status_and_headers(name, &response, &exp);
  if let Some(cookies) = exp["set-cookie"].as_array() {
    let got: Vec<_> = response
      .headers()
      .get_all("set-cookie")
      .iter()
      .map(|v| v.to_str().expect("ascii"))
      .collect();
    let want: Vec<_> = cookies
      .iter()
      .map(|c| c.as_str().expect("string"))
      .collect();
    assert_eq!(got, want, "{name}: set-cookie");
  }
  let body = response.text().await.expect("body");
  if let Some(want) = exp["body"].as_str() {
    assert_eq!(body, want, "{name}: body");
  }
  if let Some(want) = exp.get("json") {
    let want: Value =
      serde_json::from_str(&want.to_string().replace("{host}", &server.addr.to_string()))
        .expect("json");
    let got: Value = serde_json::from_str(&body)
      .unwrap_or_else(|e| panic!("{name}: body {body:?} is not JSON: {e}"));
    assert_eq!(got, want, "{name}: json body");
  }
  if let Some(keys) = exp["all_true"].as_array() {
    let got: Value = serde_json::from_str(&body).expect("json body");
    for key in keys {
      let key = key.as_str().expect("key");
      assert_eq!(
        got[key],
        Value::Bool(true),
        "{name}: check {key:?} failed: {body}"
      );
    }
  }
}

#[tokio::test(flavor = "multi_thread")]
async fn hello() {
  check_fixture("hello", http1()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_over_h2c_prior_knowledge() {
  let client = reqwest::Client::builder()
    .http2_prior_knowledge()
    .build()
    .expect("client");
  check_fixture("hello", client).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_with_env_var() {
  check_fixture("json", http1()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn header_round_trip() {
  check_fixture("headers", http1()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn request_read_cloned_and_rebuilt() {
  check_fixture("request", http1()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn typescript_worker() {
  check_fixture("typescript", http1()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_module_worker() {
  check_fixture("multi-module", http1()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn service_worker_syntax() {
  check_fixture("service-worker", http1()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn day_one_web_apis() {
  check_fixture("web-apis", http1()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn response_shapes_keep_status_headers_and_body() {
  let exp = expected("responses");
  let server = TestServer::fixture("responses").await;
  let client = http1();
  for case in exp["cases"].as_array().expect("cases") {
    let path = case["path"].as_str().expect("path");
    let response = client.get(server.url(path)).send().await.expect("request");
    assert_status_and_headers(path, &response, case);
    assert_eq!(
      response.text().await.expect("body"),
      case["body"].as_str().expect("body"),
      "{path}: body"
    );
  }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_method_outside_the_common_ones_reaches_the_worker() {
  let server = TestServer::fixture("request").await;
  let method = http::Method::from_bytes(b"PURGE").expect("method");
  let response = http1()
    .request(method, server.url("/cache/key"))
    .header("x-token", "t")
    .send()
    .await
    .expect("request");
  assert_eq!(response.status().as_u16(), 200);
  let got: Value = serde_json::from_str(&response.text().await.expect("body")).expect("json");
  assert_eq!(got["method"], "PURGE");
  assert_eq!(got["cloneMethod"], "PURGE");
  assert_eq!(got["token"], "t");
}
