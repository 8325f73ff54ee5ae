//! `outpost tail` against a control plane and two edges, all real
//! processes: console lines, uncaught exceptions and request summaries
//! from both edges, the filters, and a worker logging in a tight loop
//! (its surplus dropped and reported, other requests unaffected).

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::{Control, Storage, start_edge};
use crate::util::{Backend, outpost};

const WORKER: &str = r#"
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/boom") throw new Error("boom goes the worker");
    if (url.pathname === "/chatty") {
      // 25 MB in all: more than the socket buffers between a stopped
      // tail and the control plane hold, so something must be dropped.
      const pad = "x".repeat(512);
      for (let i = 0; i < 50000; i++) console.log(`chatter ${i} ${pad}`);
      return new Response("chatted");
    }
    console.log(`hello from ${url.pathname}`);
    return new Response("ok");
  },
};
"#;

/// `outpost tail` with its output collected line by line.
pub(crate) struct Tail {
  child: Child,
  lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Tail {
  fn drop(&mut self) {
    let _ = self.child.kill();
    let _ = self.child.wait();
  }
}

impl Tail {
  /// Starts `outpost tail app <extra>` and waits until it is tailing.
  fn start(control: &Control, extra: &[&str]) -> Self {
    Self::start_for(control, "app", extra)
  }

  /// Starts `outpost tail <worker> <extra>` and waits until it is tailing.
  pub(crate) fn start_for(control: &Control, worker: &str, extra: &[&str]) -> Self {
    let mut child = outpost()
      .args([
        "tail",
        worker,
        "--format",
        "json",
        "--url",
        &control.api,
        "--token",
        &control.admin,
      ])
      .args(extra)
      .stdout(Stdio::piped())
      .stderr(Stdio::piped())
      .spawn()
      .expect("outpost tail starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut first = String::new();
    BufReader::new(stderr)
      .read_line(&mut first)
      .expect("a first line");
    assert!(first.contains(&format!("tailing {worker}")), "{first}");
    let stdout = child.stdout.take().expect("stdout");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
      for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        sink.lock().expect("lines").push(line);
      }
    });
    Self { child, lines }
  }

  /// Stops or resumes the process, as a terminal's Ctrl-Z and `fg` do: a
  /// stopped tail reads nothing, so what is sent to it backs up.
  fn signal(&self, signal: &str) {
    let status = std::process::Command::new("kill")
      .args([signal, &self.child.id().to_string()])
      .status()
      .expect("kill runs");
    assert!(status.success(), "kill {signal}");
  }

  pub(crate) fn events(&self) -> Vec<Value> {
    self
      .lines
      .lock()
      .expect("lines")
      .iter()
      .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
      .collect()
  }
}

async fn get(edge: &str, path: &str) -> u16 {
  reqwest::Client::new()
    .get(format!("{edge}{path}"))
    .header("host", "app.test")
    .send()
    .await
    .expect("the edge answers")
    .status()
    .as_u16()
}

/// Sends `path` to every edge, again and again, until `done` holds for the
/// tail's events; edges start sending once the control plane has told them.
async fn drive_until(edges: &[&str], path: &str, tail: &Tail, done: impl Fn(&[Value]) -> bool) {
  let deadline = Instant::now() + Duration::from_secs(20);
  loop {
    for edge in edges {
      get(edge, path).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let events = tail.events();
    if done(&events) {
      return;
    }
    assert!(
      Instant::now() < deadline,
      "the tail never showed it: {events:#?}"
    );
  }
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_shows_both_edges_filters_and_drops_what_overflows() {
  let dir = tempfile::tempdir().expect("temp dir");
  let storage = Storage::new(Backend::Sqlite, &dir.path().join("control")).await;
  let control = Control::start_with(&storage, 0, 0, None);
  let edges: Vec<_> = (0..2)
    .map(|n| {
      start_edge(
        &control.api,
        Some(&storage.token("edge-join")),
        &dir.path().join(format!("edge{n}")),
      )
    })
    .collect();
  // The logging loop runs far past the default 50 ms of CPU.
  let bundle = json!({
    "main": "worker.js",
    "modules": { "worker.js": WORKER },
    "limits": { "cpu_ms": 30000, "wall_ms": 60000 },
  });
  let (status, body) = control
    .call(reqwest::Method::POST, "/workers/app/versions", Some(bundle))
    .await;
  assert_eq!(status, 201, "{body}");
  let (status, body) = control
    .call(
      reqwest::Method::PUT,
      "/routes",
      Some(json!({ "pattern": "app.test/*", "worker": "app" })),
    )
    .await;
  assert_eq!(status, 200, "{body}");
  let epoch = control.deploy("app", Some(json!({ "version": 1 }))).await;
  control.wait_for_acks(epoch).await;
  let urls: Vec<&str> = edges.iter().map(|(_, url)| url.as_str()).collect();

  let all = Tail::start(&control, &[]);
  let errors = Tail::start(&control, &["--status", "error", "--search", "boom"]);

  // Console lines and request summaries from both edges, tied by cf-ray.
  drive_until(&urls, "/hello", &all, |events| {
    let edges_seen: std::collections::BTreeSet<&str> = events
      .iter()
      .filter(|e| e["type"] == "log" && e["message"] == "hello from /hello")
      .filter_map(|e| e["edge"].as_str())
      .collect();
    edges_seen.len() == 2
  })
  .await;
  let events = all.events();
  let log = events
    .iter()
    .find(|e| e["type"] == "log")
    .expect("a log line");
  assert_eq!(log["worker"], "app");
  assert_eq!(log["version"], 1);
  assert_eq!(log["level"], "info");
  let ray = log["ray"].as_str().expect("a ray");
  let summary = events
    .iter()
    .find(|e| e["type"] == "request" && e["ray"] == ray)
    .expect("the request's summary, with the same ray");
  assert_eq!(summary["method"], "GET");
  assert_eq!(summary["status"], 200);
  assert_eq!(summary["outcome"], "ok");
  assert!(summary["url"].as_str().expect("url").ends_with("/hello"));
  assert!(
    summary["cpu_ms"].as_f64().is_some_and(|ms| ms > 0.0),
    "{summary}"
  );

  // An uncaught exception: its stack, and a 500 summary.
  drive_until(&urls[..1], "/boom", &all, |events| {
    events
      .iter()
      .any(|e| e["type"] == "request" && e["status"] == 500 && e["outcome"] == "exception")
  })
  .await;
  let events = all.events();
  let exception = events
    .iter()
    .find(|e| e["type"] == "log" && e["level"] == "error")
    .expect("the exception");
  let message = exception["message"].as_str().expect("message");
  assert!(message.contains("boom goes the worker"), "{message}");
  assert!(message.contains("worker.js:"), "with its stack: {message}");

  // The filtered tail saw the failures about boom, and nothing else.
  let filtered = errors.events();
  assert!(!filtered.is_empty(), "the filtered tail saw the failures");
  for event in &filtered {
    let text = event["message"]
      .as_str()
      .or(event["url"].as_str())
      .unwrap_or_default();
    let failed = event["level"] == "error" || event["status"].as_u64().is_some_and(|s| s >= 500);
    assert!(failed && text.contains("boom"), "filtered out: {event}");
  }

  // A tight logging loop while the tail reads nothing: what cannot be held
  // is dropped and counted, and a request beside it is answered all the
  // same. The count is a lower bound: an edge's own drop report can be
  // among what the control plane drops, and then counts as one event.
  all.signal("-STOP");
  let chatty = tokio::spawn({
    let url = urls[0].to_owned();
    async move { get(&url, "/chatty").await }
  });
  assert_eq!(get(urls[1], "/hello").await, 200);
  assert_eq!(chatty.await.expect("join"), 200);
  all.signal("-CONT");
  let deadline = Instant::now() + Duration::from_secs(30);
  loop {
    // A later event carries the edge's count of what it dropped last.
    assert_eq!(get(urls[0], "/hello").await, 200);
    let events = all.events();
    let chatter = events
      .iter()
      .filter(|e| {
        e["message"]
          .as_str()
          .is_some_and(|m| m.starts_with("chatter"))
      })
      .count();
    let dropped: u64 = events
      .iter()
      .filter(|e| e["type"] == "dropped")
      .filter_map(|e| e["count"].as_u64())
      .sum();
    if dropped > 0 && chatter > 0 {
      assert!(chatter < 50000, "some chatter was dropped");
      break;
    }
    assert!(
      Instant::now() < deadline,
      "no drop reported ({chatter} chatter lines, {dropped} dropped)"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
  }
}

#[test]
fn nothing_is_collected_untailed_and_the_buffer_is_bounded() {
  use outpost_edge::tail::{BUFFERED_EVENTS, TailHub};
  use outpost_runtime::{LogLevel, LogSink, WorkerLogLine};
  let hub = TailHub::default();
  // What the runtime does for each console line: ask, then hand it over.
  let record = |hub: &TailHub, worker: &str| {
    if hub.wants(worker) {
      hub.log(WorkerLogLine {
        worker: worker.into(),
        level: LogLevel::Info,
        message: "line".into(),
        ray: None,
      });
    }
  };
  for _ in 0..5000 {
    record(&hub, "app@1");
  }
  assert_eq!(
    hub.dropped(),
    0,
    "untailed: nothing collected, nothing dropped"
  );
  hub.set_tailed(vec!["app".into()]);
  assert!(hub.wants_worker("app@3"), "any version of a tailed worker");
  assert!(!hub.wants_worker("other@1"));
  for _ in 0..5000 {
    record(&hub, "app@1");
    record(&hub, "other@1");
  }
  assert_eq!(
    hub.dropped(),
    (5000 - BUFFERED_EVENTS) as u64,
    "no forwarder drains it: past the buffer, events are dropped, never waited for"
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn env_names_the_environments_worker() {
  let dir = tempfile::tempdir().expect("temp dir");
  let control = Control::start(&dir.path().join("control"), 0, 0, None);
  let project = dir.path().join("project");
  std::fs::create_dir_all(&project).expect("project");
  std::fs::write(
    project.join("wrangler.toml"),
    "name = \"shop\"\nmain = \"worker.js\"\n[env.staging]\n",
  )
  .expect("wrangler.toml");
  let mut child = outpost()
    .args([
      "tail",
      "--env",
      "staging",
      "--url",
      &control.api,
      "--token",
      &control.admin,
    ])
    .current_dir(&project)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("outpost tail starts");
  let mut first = String::new();
  BufReader::new(child.stderr.take().expect("stderr"))
    .read_line(&mut first)
    .expect("a first line");
  let _ = child.kill();
  let _ = child.wait();
  assert!(first.contains("tailing shop-staging"), "{first}");
}

#[test]
fn a_full_buffer_drops_and_counts_instead_of_waiting() {
  use outpost_edge::tail::{BUFFERED_EVENTS, TailHub};
  use outpost_runtime::{LogLevel, LogSink, WorkerLogLine};
  let hub = TailHub::default();
  hub.set_tailed(vec!["shop".to_owned()]);
  assert!(hub.wants_worker("shop@3"));
  assert!(!hub.wants_worker("other@1"));
  // Nobody forwards: the buffer fills, and what does not fit is counted.
  for n in 0..BUFFERED_EVENTS + 10 {
    hub.log(WorkerLogLine {
      worker: "shop@3".into(),
      level: LogLevel::Info,
      message: format!("line {n}"),
      ray: None,
    });
  }
  assert_eq!(hub.dropped(), 10);
  // Losing the control plane ends tailing until it says again who tails.
  hub.set_link(None);
  assert!(!hub.wants_worker("shop@3"));
}
