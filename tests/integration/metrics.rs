//! The admin endpoint reports isolates, starts and limits in the
//! Prometheus text format.

use std::time::Duration;

use crate::util::{TestServer, copy_fixture, expected, get_text, http1};

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_isolates_starts_and_limits() {
  let exp = expected("limits");
  let dir = copy_fixture("limits");
  let server = TestServer::folder(dir.path()).await;
  let client = http1();
  let wall = &exp["wall"];
  let slow = server.url(&format!("/{}/", wall["worker"].as_str().expect("worker")));
  let response = client.get(&slow).send().await.expect("request");
  assert_eq!(
    response.status().as_u16(),
    wall["status"].as_u64().expect("status") as u16
  );

  // One request that spins for 20 ms.
  let summed = &exp["cpu_summed"];
  let stutter = server.url(&format!(
    "/{}/?rounds=1&ms=20",
    summed["worker"].as_str().expect("worker")
  ));
  assert_eq!(
    get_text(&client, &stutter).await,
    summed["after"].as_str().expect("after")
  );

  let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
    .await
    .expect("bind");
  let url = format!("http://{}/metrics", admin.local_addr().expect("addr"));
  tokio::spawn(outpost_edge::metrics::serve(
    admin,
    server.dispatcher.clone(),
    std::sync::Arc::default(),
    std::future::pending(),
  ));
  let text = tokio::time::timeout(Duration::from_secs(10), get_text(&client, &url))
    .await
    .expect("scrape");

  let workers = std::fs::read_dir(dir.path())
    .expect("dir")
    .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
    .count();
  let value = |line_start: &str| -> u64 {
    text
      .lines()
      .find(|l| l.starts_with(line_start))
      .and_then(|l| l.rsplit(' ').next())
      .and_then(|v| v.parse().ok())
      .unwrap_or_else(|| panic!("no {line_start} in:\n{text}"))
  };
  // Only the two workers asked have started; the rest wait for a request.
  assert_eq!(value("outpost_live_isolates "), 2, "{text}");
  assert_eq!(
    value("outpost_dormant_workers "),
    workers as u64 - 2,
    "{text}"
  );
  assert_eq!(
    value("outpost_warm_starts_total ") + value("outpost_cold_starts_total "),
    2
  );
  assert_eq!(
    value("outpost_terminations_total{reason=\"wall-limit\"} "),
    1
  );
  assert!(
    text.contains("# TYPE outpost_evictions_total counter"),
    "{text}"
  );

  // The wall-limited request is still in flight; the one that spun for
  // 20 ms is counted above the 1 ms bound (on a busy machine it may have
  // had well under 20 ms of CPU).
  let count = value("outpost_request_cpu_seconds_count ");
  assert!(count >= 1, "{text}");
  assert!(
    value("outpost_request_cpu_seconds_bucket{le=\"0.001\"} ") < count,
    "{text}"
  );
  assert_eq!(
    value("outpost_request_cpu_seconds_bucket{le=\"+Inf\"} "),
    count
  );
}
