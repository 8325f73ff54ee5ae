//! The conformance suite (`tests/conformance/`): Web API checks run inside a
//! real worker. Every area must pass exactly the checks expected.json does
//! not list as known failures, so a regression fails here and so does a fix
//! that expected.json has not caught up with.

use std::collections::BTreeSet;
use std::time::Duration;

use outpost_runtime::WorkerLimits;

use serde_json::Value;

use crate::util::{TestServer, TestServerOptions, http1};

fn suite_dir() -> std::path::PathBuf {
  std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_area_passes_all_but_its_known_failures() {
  let expected: Value = serde_json::from_str(
    &std::fs::read_to_string(suite_dir().join("expected.json")).expect("expected.json"),
  )
  .expect("expected.json is JSON");
  // Generous limits: the suite generates RSA keys, slow in a debug build.
  let limits = WorkerLimits {
    cpu_per_request: Duration::from_secs(60),
    wall_per_request: Duration::from_secs(120),
    ..Default::default()
  };
  let options = TestServerOptions {
    limits,
    ..Default::default()
  };
  let server = TestServer::start(&suite_dir().join("worker.js"), options).await;
  let response = http1()
    .get(server.url("/"))
    .header("x-conformance", "yes")
    .send()
    .await
    .expect("request");
  assert_eq!(response.status(), 200);
  let report: Value = serde_json::from_str(&response.text().await.expect("body")).expect("json");

  let areas = expected["areas"].as_object().expect("areas");
  let reported: BTreeSet<&String> = report.as_object().expect("report").keys().collect();
  assert_eq!(reported, areas.keys().collect(), "the suite's areas");
  let mut table = String::from("area                 passed/total\n");
  for (area, want) in areas {
    let got = &report[area];
    let (passed, total) = (got["passed"].as_u64(), got["total"].as_u64());
    table.push_str(&format!(
      "{area:<20} {}/{}\n",
      passed.unwrap_or(0),
      total.unwrap_or(0)
    ));
    assert_eq!(total, want["total"].as_u64(), "{area}: number of checks");
    let failures: BTreeSet<&String> = got["failures"]
      .as_object()
      .expect("failures")
      .keys()
      .collect();
    let known: BTreeSet<&String> = want["known_failures"]
      .as_object()
      .expect("known")
      .keys()
      .collect();
    assert_eq!(
      failures, known,
      "{area}: failing checks differ from the known failures: {}",
      got["failures"]
    );
  }
  println!("{table}");
}
