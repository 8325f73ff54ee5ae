//! Hot reload: edits take effect, in-flight requests finish on the old code,
//! and a broken edit leaves the last good version serving.

use std::time::Duration;

use crate::util::{
  TestServer, TestServerOptions, expected, fixtures_dir, get_text, http1, wait_for_body,
  wait_for_log,
};

#[tokio::test(flavor = "multi_thread")]
async fn edits_reload_and_broken_edits_keep_the_last_good_version() {
  let exp = expected("reload");
  let dir = tempfile::tempdir().expect("tempdir");
  let entry = dir.path().join("worker.js");
  let original = std::fs::read_to_string(fixtures_dir().join("reload/worker.js")).expect("fixture");
  std::fs::write(&entry, &original).expect("copy fixture");
  let server = TestServer::start(
    &entry,
    TestServerOptions {
      watch: true,
      ..Default::default()
    },
  )
  .await;
  let client = http1();
  let v1 = exp["before"].as_str().expect("before");
  let v2 = exp["after_edit"].as_str().expect("after_edit");
  assert_eq!(get_text(&client, &server.url("/")).await, v1);

  let in_flight = {
    let client = client.clone();
    let url = server.url("/slow");
    tokio::spawn(async move { get_text(&client, &url).await })
  };
  tokio::time::sleep(Duration::from_millis(200)).await;
  std::fs::write(
    &entry,
    original.replace(&format!("\"{v1}\""), &format!("\"{v2}\"")),
  )
  .expect("edit");
  wait_for_body(&client, &server.url("/"), v2).await;
  assert_eq!(
    in_flight.await.expect("join"),
    exp["in_flight_during_edit"].as_str().expect("in_flight"),
    "a request in flight during the edit finishes on the old code"
  );

  std::fs::write(&entry, original.replace(&format!("\"{v1}\""), "")).expect("broken edit");
  let location = format!(
    "{}{}",
    dir.path().display(),
    exp["broken_edit_log_contains"].as_str().expect("log")
  );
  assert!(
    wait_for_log(&location, Duration::from_secs(10)).await,
    "the syntax error should be logged with file:line:col ({location})"
  );
  assert_eq!(
    get_text(&client, &server.url("/")).await,
    exp["after_broken_edit"].as_str().expect("after_broken")
  );
}
