//! A failing handler gets a 500 and a logged stack; the isolate lives on.

use std::time::Duration;

use crate::util::{TestServer, expected, http1, wait_for_log};

#[tokio::test(flavor = "multi_thread")]
async fn failures_answer_500_and_the_next_request_succeeds() {
  let exp = expected("throws");
  let server = TestServer::fixture("throws").await;
  let client = http1();
  for path in exp["requests"].as_array().expect("requests") {
    let path = path.as_str().expect("path");
    let response = client.get(server.url(path)).send().await.expect("request");
    assert_eq!(
      response.status().as_u16(),
      exp["status"].as_u64().expect("status") as u16,
      "{path}"
    );
    assert_eq!(
      response.text().await.expect("body"),
      exp["body"].as_str().expect("body"),
      "{path}"
    );

    let after = &exp["after"];
    let response = client
      .get(server.url(after["path"].as_str().expect("path")))
      .send()
      .await
      .expect("request");
    assert_eq!(
      response.status().as_u16(),
      after["status"].as_u64().expect("status") as u16
    );
    assert_eq!(
      response.text().await.expect("body"),
      after["body"].as_str().expect("body")
    );
  }
  let location = exp["log_contains"].as_str().expect("log_contains");
  assert!(
    wait_for_log(location, Duration::from_secs(5)).await,
    "the error log should carry the JS stack with {location}"
  );
  assert!(
    wait_for_log(
      "the fetch handler returned object, not a Response",
      Duration::from_secs(5)
    )
    .await
  );
}
