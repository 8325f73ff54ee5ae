//! Cron triggers of a deployed worker across a control plane and three
//! edges, on a clock the test moves (`outpost control --cron-clock-file`):
//! one run per scheduled minute, on live edges only, while an edge and
//! then a control plane are killed. On SQLite the control plane restarts;
//! on PostgreSQL a second replica carries on.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::cluster::{Control, Process, Storage, start_edge};
use crate::tail::Tail;
use crate::util::Backend;

/// 2030-01-01T00:00:30Z: half a minute before the first firing.
const START_MS: u64 = 1_893_456_030_000;
const MINUTE_MS: u64 = 60_000;

/// Each run leaves a key of its own, so a double run shows as two keys.
const WORKER: &str = r#"export default {
  fetch() { return new Response("cron worker"); },
  async scheduled(controller, env) {
    await env.RUNS.put(`run:${controller.scheduledTime}:${crypto.randomUUID()}`, controller.cron);
  },
};
"#;

/// The time every control plane reads, moved by rewriting its file.
struct TestClock(PathBuf);

impl TestClock {
  fn set(&self, ms: u64) {
    let temporary = self.0.with_extension("tmp");
    std::fs::write(&temporary, ms.to_string()).expect("clock file");
    std::fs::rename(&temporary, &self.0).expect("clock file");
  }

  fn args(&self) -> Vec<String> {
    vec![
      "--cron-clock-file".into(),
      self.0.to_str().expect("utf-8 path").into(),
    ]
  }
}

fn control(
  storage: &Storage,
  clock: &TestClock,
  ports: (u16, u16),
  admin: Option<&str>,
) -> Control {
  let mut args = storage.0.clone();
  args.extend(clock.args());
  let args: Vec<&str> = args.iter().map(String::as_str).collect();
  Control::start_on(&args, ports.0, ports.1, admin)
}

/// The scheduled times of the runs so far, one entry per run, sorted.
async fn runs(control: &Control, ns: &str) -> Vec<u64> {
  let (status, body) = control
    .call(
      Method::GET,
      &format!("/kv/namespaces/{ns}/keys?prefix=run:"),
      None,
    )
    .await;
  assert_eq!(status, 200, "{body}");
  let mut times: Vec<u64> = body["keys"]
    .as_array()
    .expect("keys")
    .iter()
    .filter_map(|key| key["name"].as_str()?.split(':').nth(1)?.parse().ok())
    .collect();
  times.sort_unstable();
  times
}

/// Waits until `count` runs are recorded, then a little longer to catch a
/// late double.
async fn wait_for_runs(control: &Control, ns: &str, count: usize) -> Vec<u64> {
  let deadline = Instant::now() + Duration::from_secs(60);
  loop {
    let got = runs(control, ns).await;
    if got.len() >= count {
      tokio::time::sleep(Duration::from_millis(1500)).await;
      return runs(control, ns).await;
    }
    assert!(
      Instant::now() < deadline,
      "{count} runs expected, {} so far: {got:?}",
      got.len()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
  }
}

fn node_id(data: &Path) -> String {
  let identity: Value =
    serde_json::from_slice(&std::fs::read(data.join("node.json")).expect("node.json"))
      .expect("JSON");
  identity["id"].as_str().expect("an id").to_owned()
}

/// Deploys the cron worker with `RUNS` bound to a new namespace; returns
/// the namespace id and the epoch.
async fn deploy(control: &Control) -> (String, u64) {
  let (status, body) = control
    .call(
      Method::POST,
      "/kv/namespaces",
      Some(json!({ "title": "runs" })),
    )
    .await;
  assert_eq!(status, 201, "{body}");
  let ns = body["namespace"]["id"].as_str().expect("id").to_owned();
  let bundle = json!({
    "main": "worker.js",
    "modules": { "worker.js": WORKER },
    "kv_namespaces": [{ "binding": "RUNS", "id": ns }],
    "crons": ["* * * * *"],
  });
  let (status, body) = control
    .call(Method::POST, "/workers/ticker/versions", Some(bundle))
    .await;
  assert_eq!(status, 201, "{body}");
  let epoch = control
    .deploy("ticker", Some(json!({ "version": 1 })))
    .await;
  (ns, epoch)
}

async fn five_minutes_once_each(backend: Backend) {
  let dir = tempfile::tempdir().expect("temp dir");
  let clock = TestClock(dir.path().join("clock"));
  clock.set(START_MS);
  let storage = Storage::new(backend, &dir.path().join("control")).await;
  let first = control(&storage, &clock, (0, 0), None);
  let admin = first.admin.clone();
  let ports = (first.api_port, first.sync_port);
  // On PostgreSQL a second replica shares the work; the third edge
  // enrols (and syncs) through it.
  let second = match backend {
    Backend::Postgres => Some(control(&storage, &clock, (0, 0), Some(&admin))),
    Backend::Sqlite => None,
  };
  let mut edges: Vec<Option<Process>> = Vec::new();
  let mut ids = Vec::new();
  for n in 0..3 {
    let via = match (&second, n) {
      (Some(second), 2) => second,
      _ => &first,
    };
    let data = dir.path().join(format!("edge{n}"));
    let (process, _) = start_edge(&via.api, Some(&storage.token("edge-join")), &data);
    edges.push(Some(process));
    ids.push(node_id(&data));
  }
  let (ns, epoch) = deploy(&first).await;
  first.wait_for_acks(epoch).await;
  // A tail through the only control plane sees every firing's outcome.
  let tail = matches!(backend, Backend::Sqlite).then(|| Tail::start_for(&first, "ticker", &[]));

  let minute = |n: u64| START_MS - 30_000 + n * MINUTE_MS;
  let mut expected = Vec::new();
  let mut first = Some(first);
  for n in 1..=5u64 {
    // Between minutes 2 and 3 an edge dies; between 3 and 4 a control
    // plane (on SQLite the only one, which comes back on its ports).
    if n == 3 {
      edges[0] = None;
    }
    if n == 4 {
      first = None;
    }
    clock.set(minute(n) + 2_000);
    if n == 4 && second.is_none() {
      first = Some(control(&storage, &clock, ports, Some(&admin)));
    }
    let observer = first.as_ref().or(second.as_ref()).expect("a control plane");
    expected.push(minute(n));
    let got = wait_for_runs(observer, &ns, expected.len()).await;
    assert_eq!(got, expected, "one run per minute up to minute {n}");
    if n == 2
      && let Some(tail) = &tail
    {
      let events: Vec<Value> = tail
        .events()
        .into_iter()
        .filter(|event| event["type"] == "scheduled")
        .collect();
      assert_eq!(events.len(), 2, "{events:?}");
      for (event, minute) in events.iter().zip([minute(1), minute(2)]) {
        assert_eq!(event["outcome"], "ok", "{event}");
        assert_eq!(event["scheduled_ms"].as_u64(), Some(minute), "{event}");
        assert!(event["wall_ms"].is_u64(), "{event}");
      }
    }
  }

  // The store's record: five firings, each run by a live edge, and none
  // by the dead one after its death.
  let observer = first.as_ref().or(second.as_ref()).expect("a control plane");
  let (status, body) = observer
    .call(Method::GET, "/workers/ticker/triggers", None)
    .await;
  assert_eq!(status, 200, "{body}");
  let recent = body["recent"].as_array().expect("recent firings");
  assert_eq!(recent.len(), 5, "{body}");
  for firing in recent {
    assert_eq!(firing["ok"], true, "{firing}");
    let edge = firing["edge"].as_str().expect("an edge");
    assert!(ids.iter().any(|id| id == edge), "{firing}");
    if firing["scheduled_ms"].as_u64() >= Some(minute(3)) {
      assert_ne!(edge, ids[0], "the killed edge ran {firing}");
    }
  }
}

#[tokio::test]
async fn crons_fire_once_per_minute_across_edges_and_a_restart_on_sqlite() {
  five_minutes_once_each(Backend::Sqlite).await;
}

#[tokio::test]
async fn crons_fire_once_per_minute_across_two_replicas_on_postgres() {
  five_minutes_once_each(Backend::Postgres).await;
}

/// Sleeps long enough to be killed mid-run, then leaves its key.
const SLOW_WORKER: &str = r#"export default {
  fetch() { return new Response("slow cron worker"); },
  async scheduled(controller, env) {
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await env.RUNS.put(`run:${controller.scheduledTime}:${crypto.randomUUID()}`, controller.cron);
  },
};
"#;

#[tokio::test]
async fn a_firing_whose_edge_dies_mid_run_runs_on_another() {
  let dir = tempfile::tempdir().expect("temp dir");
  let clock = TestClock(dir.path().join("clock"));
  clock.set(START_MS);
  let storage = Storage::new(Backend::Sqlite, &dir.path().join("control")).await;
  let control = control(&storage, &clock, (0, 0), None);
  let mut edges = Vec::new();
  for n in 0..2 {
    let data = dir.path().join(format!("edge{n}"));
    let (process, _) = start_edge(&control.api, Some(&storage.token("edge-join")), &data);
    edges.push((node_id(&data), Some(process)));
  }
  let (status, body) = control
    .call(
      Method::POST,
      "/kv/namespaces",
      Some(json!({ "title": "runs" })),
    )
    .await;
  assert_eq!(status, 201, "{body}");
  let ns = body["namespace"]["id"].as_str().expect("id").to_owned();
  let bundle = json!({
    "main": "worker.js",
    "modules": { "worker.js": SLOW_WORKER },
    "kv_namespaces": [{ "binding": "RUNS", "id": ns }],
    "crons": ["* * * * *"],
  });
  let (status, body) = control
    .call(Method::POST, "/workers/ticker/versions", Some(bundle))
    .await;
  assert_eq!(status, 201, "{body}");
  let epoch = control
    .deploy("ticker", Some(json!({ "version": 1 })))
    .await;
  control.wait_for_acks(epoch).await;

  // The scheduler hands a firing to the node at (seconds % nodes) of the
  // sorted ids: kill that one while its handler sleeps.
  let due = START_MS + 30_000;
  edges.sort_by(|a, b| a.0.cmp(&b.0));
  let first = usize::try_from(due / 1000).expect("seconds") % edges.len();
  clock.set(due + 1_000);
  tokio::time::sleep(Duration::from_millis(1500)).await;
  edges[first].1 = None;
  let survivor = edges[1 - first].0.clone();

  assert_eq!(
    wait_for_runs(&control, &ns, 1).await,
    [due],
    "one run, on the other edge"
  );
  let (_, body) = control
    .call(Method::GET, "/workers/ticker/triggers", None)
    .await;
  assert_eq!(body["recent"][0]["edge"], survivor.as_str(), "{body}");
}
