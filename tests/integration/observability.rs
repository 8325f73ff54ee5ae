//! The control plane's `/metrics` (epoch, connected edges, each edge's
//! lag) and `--log-format json`, with real processes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::cluster::{Process, start_edge};
use crate::util::{make_token, metric, outpost};

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
  assert_eq!(metric(&text, "outpost_connected_edges", &[]), Some(0.0));
  assert_eq!(metric(&text, "outpost_control_epoch", &[]), Some(0.0));

  let join = make_token(&["--data", data.to_str().expect("utf-8")], "edge-join");
  let (_edge, _) = start_edge(&api, Some(&join), &dir.path().join("edge"));
  let deadline = Instant::now() + Duration::from_secs(10);
  loop {
    let text = scrape().await;
    if metric(&text, "outpost_connected_edges", &[]) == Some(1.0) {
      let lag = metric(&text, "outpost_edge_sync_lag_epochs", &[]);
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

/// A stand-in OTLP collector: records each request's path, content type
/// and body.
async fn collector() -> (
  String,
  std::sync::Arc<std::sync::Mutex<Vec<(String, String, Vec<u8>)>>>,
) {
  use http_body_util::BodyExt;
  let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
    .await
    .expect("bind");
  let url = format!("http://{}", listener.local_addr().expect("address"));
  let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
  let record = seen.clone();
  tokio::spawn(async move {
    loop {
      let Ok((stream, _)) = listener.accept().await else {
        return;
      };
      let record = record.clone();
      tokio::spawn(async move {
        let service =
          hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let record = record.clone();
            async move {
              let path = request.uri().path().to_owned();
              let kind = request
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
              let body = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().to_vec())
                .unwrap_or_default();
              record.lock().expect("record").push((path, kind, body));
              Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                bytes::Bytes::new(),
              )))
            }
          });
        let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
          .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
          .await;
      });
    }
  });
  (url, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn request_spans_are_exported_over_otlp_when_asked() {
  let (endpoint, seen) = collector().await;
  let folder = crate::util::copy_fixture("edge-folder");
  let mut child = outpost()
    .args(["edge", "--local"])
    .arg(folder.path())
    .args([
      "--port",
      "0",
      "--threads",
      "1",
      "--otlp-endpoint",
      &endpoint,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("outpost edge starts");
  let stdout = child.stdout.take().expect("stdout");
  let edge = Process(child);
  let mut line = String::new();
  BufReader::new(stdout)
    .read_line(&mut line)
    .expect("a ready line");
  let url = line
    .split_whitespace()
    .find(|w| w.starts_with("http://"))
    .expect("the address")
    .trim_end_matches('/')
    .to_owned();
  for _ in 0..3 {
    let response = reqwest::get(format!("{url}/beta/")).await.expect("answer");
    assert_eq!(response.status(), 200);
  }
  // SIGTERM: the edge flushes its spans as it stops.
  let status = std::process::Command::new("kill")
    .args(["-TERM", &edge.0.id().to_string()])
    .status()
    .expect("kill runs");
  assert!(status.success());
  let deadline = Instant::now() + Duration::from_secs(15);
  loop {
    let exported = seen.lock().expect("seen").iter().any(|(path, kind, body)| {
      path == "/v1/traces"
        && kind == "application/x-protobuf"
        && body.windows(7).any(|w| w == b"request")
    });
    if exported {
      break;
    }
    assert!(
      Instant::now() < deadline,
      "no request spans reached the collector"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
  }
}
