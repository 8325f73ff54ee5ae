//! The control plane's `/metrics` (epoch, connected edges, each edge's
//! lag) and `--log-format json`, with real processes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::cluster::{Process, start_edge};
use crate::util::{make_token, outpost};

/// Parses a scrape and returns the value of `name` with `label`, if any.
fn sample(text: &str, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
  let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
    .expect("the Prometheus text format");
  scrape
    .samples
    .iter()
    .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
    .map(|s| match s.value {
      prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Counter(v) => v,
      _ => f64::NAN,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn control_plane_metrics_and_json_logs() {
  let dir = tempfile::tempdir().expect("temp dir");
  let data = dir.path().join("control");
  let log = dir.path().join("control.log");
  let mut child = outpost()
    .args(["control", "--data"])
    .arg(&data)
    .args([
      "--listen",
      "127.0.0.1:0",
      "--sync-listen",
      "127.0.0.1:0",
      "--admin-listen",
      "127.0.0.1:0",
      "--log-format",
      "json",
    ])
    .stdout(Stdio::piped())
    .stderr(std::fs::File::create(&log).expect("log file"))
    .spawn()
    .expect("outpost control starts");
  let stdout = child.stdout.take().expect("stdout");
  let _control = Process(child);
  let mut metrics = None;
  let mut api = None;
  for line in BufReader::new(stdout).lines() {
    let line = line.expect("text");
    let url = line
      .split_whitespace()
      .find(|w| w.starts_with("http://"))
      .map(str::to_owned);
    if line.contains("metrics on") {
      metrics = url;
    } else if line.contains("API at") {
      api = url;
      break;
    }
  }
  let (metrics, api) = (
    metrics.expect("the metrics address"),
    api.expect("the API address"),
  );
  let scrape = || async {
    reqwest::get(&metrics)
      .await
      .expect("scrape")
      .text()
      .await
      .expect("text")
  };
  let text = scrape().await;
  assert_eq!(sample(&text, "outpost_connected_edges", None), Some(0.0));
  assert_eq!(sample(&text, "outpost_control_epoch", None), Some(0.0));

  let join = make_token(&["--data", data.to_str().expect("utf-8")], "edge-join");
  let (_edge, _) = start_edge(&api, Some(&join), &dir.path().join("edge"));
  let deadline = Instant::now() + Duration::from_secs(10);
  loop {
    let text = scrape().await;
    if sample(&text, "outpost_connected_edges", None) == Some(1.0) {
      let lag = sample(&text, "outpost_edge_sync_lag_epochs", None);
      assert_eq!(lag, Some(0.0), "{text}");
      break;
    }
    assert!(Instant::now() < deadline, "the edge never counted: {text}");
    tokio::time::sleep(Duration::from_millis(50)).await;
  }

  // Every log line is a JSON object with a level and a message.
  let text = std::fs::read_to_string(&log).expect("the log");
  let mut lines = 0;
  for line in text.lines() {
    let entry: serde_json::Value =
      serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert!(entry["level"].is_string(), "{line}");
    assert!(entry["fields"]["message"].is_string(), "{line}");
    lines += 1;
  }
  assert!(lines >= 1, "the control plane logged something");
  assert!(text.contains("edge enrolled"), "{text}");
}
