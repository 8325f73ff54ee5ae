//! The control plane and edge nodes as real processes on loopback, for the
//! suites that need a cluster (`distribution`, `kv_edges`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{Backend, fresh_postgres_database, make_token, outpost};

/// A child process killed (SIGKILL) when dropped.
pub struct Process(pub Child);

impl Drop for Process {
  fn drop(&mut self) {
    let _ = self.0.kill();
    let _ = self.0.wait();
  }
}

/// Starts `outpost <args>` and reads stdout up to the line containing
/// `ready`; returns the process and the lines read.
pub fn start(args: &[&str], ready: &str) -> (Process, Vec<String>) {
  start_with_env(args, ready, &[])
}

/// As [`start`], with `env` added to its environment.
pub fn start_with_env(args: &[&str], ready: &str, env: &[(&str, &str)]) -> (Process, Vec<String>) {
  let mut child = outpost()
    .envs(env.iter().copied())
    .args(args)
    .stdout(Stdio::piped())
    // OUTPOST_TEST_STDERR=1 shows the processes' logs when debugging.
    .stderr(if std::env::var_os("OUTPOST_TEST_STDERR").is_some() {
      Stdio::inherit()
    } else {
      Stdio::null()
    })
    .spawn()
    .expect("outpost starts");
  let stdout = child.stdout.take().expect("stdout");
  let process = Process(child);
  let mut lines = Vec::new();
  for line in BufReader::new(stdout).lines() {
    let line = line.expect("text");
    let done = line.contains(ready);
    lines.push(line);
    if done {
      return (process, lines);
    }
  }
  panic!("outpost {args:?} ended before {ready:?}: {lines:?}");
}

/// Which store the control plane runs on, as `outpost control` flags.
#[derive(Clone)]
pub struct Storage(pub Vec<String>);

impl Storage {
  /// A fresh store of `backend`: a SQLite file in `dir`, or a new
  /// PostgreSQL database.
  pub async fn new(backend: Backend, dir: &Path) -> Self {
    match backend {
      Backend::Sqlite => Self(vec![
        "--data".into(),
        dir.to_str().expect("utf-8 path").into(),
      ]),
      Backend::Postgres => Self(vec!["--database".into(), fresh_postgres_database().await]),
    }
  }

  pub fn args(&self) -> Vec<&str> {
    self.0.iter().map(String::as_str).collect()
  }

  pub fn token(&self, scope: &str) -> String {
    make_token(&self.0, scope)
  }
}

pub struct Control {
  _process: Process,
  /// The API's base URL, `http://127.0.0.1:P/v1`.
  pub api: String,
  /// The admin token.
  pub admin: String,
  /// The ports it listens on, for a restart on the same ones.
  pub api_port: u16,
  pub sync_port: u16,
}

impl Control {
  /// `outpost control` on `data`, with the API on `api_port` and sync on
  /// `sync_port` (0: any); `admin` is the token of an earlier start.
  pub fn start(data: &Path, api_port: u16, sync_port: u16, admin: Option<&str>) -> Self {
    let data = data.to_str().expect("utf-8 path");
    Self::start_on(&["--data", data], api_port, sync_port, admin)
  }

  pub fn start_with(storage: &Storage, api_port: u16, sync_port: u16, admin: Option<&str>) -> Self {
    Self::start_on(&storage.args(), api_port, sync_port, admin)
  }

  /// As [`Control::start`], with `storage` the flags naming the store.
  pub fn start_on(storage: &[&str], api_port: u16, sync_port: u16, admin: Option<&str>) -> Self {
    Self::start_on_env(storage, api_port, sync_port, admin, &[])
  }

  /// As [`Control::start_on`], with `env` added to its environment.
  pub fn start_on_env(
    storage: &[&str],
    api_port: u16,
    sync_port: u16,
    admin: Option<&str>,
    env: &[(&str, &str)],
  ) -> Self {
    let listen = format!("127.0.0.1:{api_port}");
    let sync_listen = format!("127.0.0.1:{sync_port}");
    let mut args = vec![
      "control",
      "--listen",
      &listen,
      "--sync-listen",
      &sync_listen,
    ];
    args.extend_from_slice(storage);
    let (process, lines) = start_with_env(&args, "API at", env);
    let admin = admin
      .map(str::to_owned)
      .or_else(|| lines.iter().find(|l| l.starts_with("opt_")).cloned())
      .expect("an admin token");
    // "outpost control: API at http://127.0.0.1:P/v1 sync at 127.0.0.1:Q data in ..."
    let words: Vec<&str> = lines
      .last()
      .expect("the ready line")
      .split_whitespace()
      .collect();
    let after = |word: &str| {
      let at = words
        .iter()
        .position(|w| *w == word)
        .expect("the ready line's layout");
      words[at + 2]
    };
    let api = after("API").to_owned();
    let port = |address: &str| -> u16 {
      let address = address
        .trim_start_matches("http://")
        .trim_end_matches("/v1");
      address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("a port")
    };
    Self {
      _process: process,
      api_port: port(&api),
      sync_port: port(after("sync")),
      api,
      admin,
    }
  }

  pub async fn call(
    &self,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
  ) -> (u16, Value) {
    let mut request = reqwest::Client::new()
      .request(method, format!("{}{path}", self.api))
      .bearer_auth(&self.admin);
    if let Some(body) = body {
      request = request.body(body.to_string());
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    (status, serde_json::from_slice(&bytes).expect("JSON"))
  }

  /// Uploads a worker answering `text` and returns its version number.
  pub async fn upload(&self, worker: &str, text: &str) -> u64 {
    let bundle = json!({
      "main": "worker.js",
      "modules": { "worker.js": format!("export default {{ fetch() {{ return new Response({text:?}); }} }};") },
    });
    let (status, body) = self
      .call(
        reqwest::Method::POST,
        &format!("/workers/{worker}/versions"),
        Some(bundle),
      )
      .await;
    assert!(status == 201 || status == 200, "{body}");
    body["version"]["number"].as_u64().expect("number")
  }

  /// Makes a deployment (or rollback) and returns its epoch.
  pub async fn deploy(&self, worker: &str, body: Option<Value>) -> u64 {
    let path = match body {
      Some(_) => format!("/workers/{worker}/deployments"),
      None => format!("/workers/{worker}/rollback"),
    };
    let (status, answer) = self.call(reqwest::Method::POST, &path, body).await;
    assert_eq!(status, 201, "{answer}");
    answer["deployment"]["epoch"].as_u64().expect("epoch")
  }

  /// Waits until every enrolled edge has acked `epoch`.
  pub async fn wait_for_acks(&self, epoch: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while self.edge_epochs().await.iter().any(|&e| e < epoch) {
      assert!(
        Instant::now() < deadline,
        "not every edge acked epoch {epoch}"
      );
      tokio::time::sleep(Duration::from_millis(20)).await;
    }
  }

  /// Starts `count` edges enrolled with this control plane, their data in
  /// `dir`.
  pub fn start_edges(&self, storage: &Storage, dir: &Path, count: usize) -> Vec<(Process, String)> {
    (0..count)
      .map(|n| {
        let join = storage.token("edge-join");
        start_edge(&self.api, Some(&join), &dir.join(format!("edge{n}")))
      })
      .collect()
  }

  pub async fn edge_epochs(&self) -> Vec<u64> {
    let (_, body) = self.call(reqwest::Method::GET, "/edges", None).await;
    body["edges"]
      .as_array()
      .expect("edges")
      .iter()
      .filter_map(|e| e["epoch"].as_u64())
      .collect()
  }
}

/// `outpost edge --control` on `data`; returns the process and its URL.
pub fn start_edge(control_api: &str, join: Option<&str>, data: &Path) -> (Process, String) {
  start_edge_with(control_api, join, data, &[])
}

/// As [`start_edge`], with `extra` flags.
pub fn start_edge_with(
  control_api: &str,
  join: Option<&str>,
  data: &Path,
  extra: &[&str],
) -> (Process, String) {
  let (process, lines) = start_edge_lines(control_api, join, data, extra);
  (process, http_address(&lines))
}

/// The `http://` address on an edge's ready line, without a trailing slash.
pub fn http_address(lines: &[String]) -> String {
  lines
    .last()
    .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
    .expect("the edge's address")
    .trim_end_matches('/')
    .to_owned()
}

/// As [`start_edge_with`], returning the lines printed up to the ready
/// line (the metrics address, with `--admin-port`, is among them).
pub fn start_edge_lines(
  control_api: &str,
  join: Option<&str>,
  data: &Path,
  extra: &[&str],
) -> (Process, Vec<String>) {
  let mut args = vec![
    "edge",
    "--control",
    control_api,
    "--data",
    data.to_str().expect("utf-8 path"),
    "--port",
    "0",
    "--threads",
    "1",
  ];
  if let Some(join) = join {
    args.extend(["--join", join]);
  }
  args.extend_from_slice(extra);
  start(&args, "at http://")
}

pub async fn body_of(url: &str) -> Option<String> {
  let response = reqwest::get(url).await.ok()?;
  if !response.status().is_success() {
    return None;
  }
  response.text().await.ok()
}

/// Waits until `url` answers `want`.
pub async fn wait_for(url: &str, want: &str) {
  let deadline = Instant::now() + Duration::from_secs(20);
  loop {
    let got = body_of(url).await;
    if got.as_deref() == Some(want) {
      return;
    }
    assert!(
      Instant::now() < deadline,
      "{url} answers {got:?}, not {want:?}"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
  }
}
