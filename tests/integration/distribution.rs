//! The control plane and edge nodes as real processes on loopback: a
//! deployment reaching every edge over QUIC, rollbacks and splits, edges
//! serving on while the control plane is down, and what they refuse.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster::{Control, Storage, body_of, start_edge, wait_for};
use crate::util::{Backend, fresh_postgres_database, make_token, outpost};

async fn deployments_rollbacks_and_splits_reach_every_edge(backend: Backend) {
  let data = tempfile::tempdir().expect("temp dir");
  let storage = Storage::new(backend, &data.path().join("control")).await;
  let control = Control::start_with(&storage, 0, 0, None);
  let edges = control.start_edges(&storage, data.path(), 3);
  assert_eq!(control.upload("shop", "v1").await, 1);
  assert_eq!(control.upload("shop", "v2").await, 2);
  let (status, body) = control
    .call(
      reqwest::Method::PUT,
      "/routes",
      Some(json!({ "pattern": "*/shop/*", "worker": "shop" })),
    )
    .await;
  assert_eq!(status, 200, "{body}");

  let epoch = control.deploy("shop", Some(json!({ "version": 1 }))).await;
  for (_, url) in &edges {
    wait_for(&format!("{url}/shop/cart"), "v1").await;
  }
  control.wait_for_acks(epoch).await;
  assert_eq!(control.edge_epochs().await.len(), 3);

  control.deploy("shop", Some(json!({ "version": 2 }))).await;
  for (_, url) in &edges {
    wait_for(&format!("{url}/shop/cart"), "v2").await;
  }
  control.deploy("shop", None).await;
  for (_, url) in &edges {
    wait_for(&format!("{url}/shop/cart"), "v1").await;
  }

  let split =
    json!({ "versions": [{ "version": 2, "percent": 90 }, { "version": 1, "percent": 10 }] });
  let epoch = control.deploy("shop", Some(split)).await;
  let url = &edges[0].1;
  control.wait_for_acks(epoch).await;
  let client = reqwest::Client::new();
  let mut v2 = 0;
  for _ in 0..1000 {
    let text = client
      .get(format!("{url}/shop/x"))
      .send()
      .await
      .expect("answer")
      .text()
      .await
      .expect("text");
    match text.as_str() {
      "v2" => v2 += 1,
      "v1" => {}
      other => panic!("unexpected answer {other:?}"),
    }
  }
  assert!(
    (850..=950).contains(&v2),
    "{v2} of 1000 went to v2, expected about 900"
  );

  // Removed: its route and its versions no longer serve, anywhere.
  let (status, body) = control
    .call(reqwest::Method::DELETE, "/workers/shop", None)
    .await;
  assert_eq!(status, 200, "{body}");
  let epoch = body["deployment"]["epoch"].as_u64().expect("epoch");
  control.wait_for_acks(epoch).await;
  for (_, url) in &edges {
    let status = reqwest::get(format!("{url}/shop/cart"))
      .await
      .expect("answer")
      .status();
    assert_eq!(status, 404, "{url} still serves the removed worker");
  }
  let (status, body) = control
    .call(reqwest::Method::DELETE, "/workers/shop", None)
    .await;
  assert_eq!(status, 404, "removed already: {body}");
  // A rollback brings the split back (reachable by name; routes stay gone).
  control.deploy("shop", None).await;
  for (_, url) in &edges {
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
      match body_of(&format!("{url}/shop/")).await {
        Some(text) => break text,
        None => {
          assert!(Instant::now() < deadline, "{url} did not bring shop back");
          tokio::time::sleep(Duration::from_millis(20)).await;
        }
      }
    };
    assert!(text == "v1" || text == "v2", "{text}");
  }
}

async fn edges_serve_on_while_the_control_plane_is_down(backend: Backend) {
  let data = tempfile::tempdir().expect("temp dir");
  let storage = Storage::new(backend, &data.path().join("control")).await;
  let control = Control::start_with(&storage, 0, 0, None);
  let (api_port, sync_port) = (control.api_port, control.sync_port);
  let admin = control.admin.clone();
  let join = storage.token("edge-join");
  let edge_data = data.path().join("edge");
  let (edge, url) = start_edge(&control.api, Some(&join), &edge_data);
  control.upload("site", "v1").await;
  control.deploy("site", Some(json!({ "version": 1 }))).await;
  wait_for(&format!("{url}/site/"), "v1").await;

  drop(control); // SIGKILL
  assert_eq!(
    body_of(&format!("{url}/site/")).await.as_deref(),
    Some("v1")
  );

  // Restarted while the control plane is down: it serves from disk at once.
  drop(edge);
  let api = format!("http://127.0.0.1:{api_port}/v1");
  let (_edge, url) = start_edge(&api, None, &edge_data);
  assert_eq!(
    body_of(&format!("{url}/site/")).await.as_deref(),
    Some("v1")
  );

  // The control plane comes back, and the edge catches up.
  let control = Control::start_with(&storage, api_port, sync_port, Some(&admin));
  control.upload("site", "v2").await;
  control.deploy("site", Some(json!({ "version": 2 }))).await;
  wait_for(&format!("{url}/site/"), "v2").await;
}

#[tokio::test]
async fn bad_join_tokens_and_tampered_bundles_are_refused() {
  let data = tempfile::tempdir().expect("temp dir");
  let control_data = data.path().join("control");
  let control = Control::start(&control_data, 0, 0, None);

  let enrol = |join: &str, dir: &str| {
    outpost()
      .args([
        "edge",
        "--control",
        &control.api,
        "--port",
        "0",
        "--join",
        join,
        "--data",
      ])
      .arg(data.path().join(dir))
      .stdout(Stdio::null())
      .output()
      .expect("runs")
  };
  let refused = enrol("opt_made-up", "e-bad");
  assert!(!refused.status.success());
  assert!(
    String::from_utf8_lossy(&refused.stderr).contains("unknown token"),
    "{}",
    String::from_utf8_lossy(&refused.stderr)
  );
  let storage = ["--data", control_data.to_str().expect("utf-8 path")];
  let reader = make_token(&storage, "read-only");
  let refused = enrol(&reader, "e-reader");
  assert!(String::from_utf8_lossy(&refused.stderr).contains("edge-join token"));
  let join = make_token(&storage, "edge-join");
  let (_edge, url) = start_edge(&control.api, Some(&join), &data.path().join("edge"));
  let reused = enrol(&join, "e-again");
  assert!(
    String::from_utf8_lossy(&reused.stderr).contains("unknown token"),
    "a join token works once"
  );

  control.upload("app", "good").await;
  control.deploy("app", Some(json!({ "version": 1 }))).await;
  wait_for(&format!("{url}/app/"), "good").await;

  // Tamper with v2's stored bytes behind the control plane's back.
  control.upload("app", "evil").await;
  let (_, versions) = control
    .call(reqwest::Method::GET, "/workers/app/versions", None)
    .await;
  let hash = versions["versions"][1]["hash"]
    .as_str()
    .expect("hash")
    .to_owned();
  let db = rusqlite::Connection::open(control_data.join("control.db")).expect("open the database");
  db.busy_timeout(Duration::from_secs(5)).expect("timeout");
  let stored: Vec<u8> = db
    .query_row("SELECT bytes FROM bundles WHERE hash = ?1", [&hash], |r| {
      r.get(0)
    })
    .expect("stored");
  let tampered = String::from_utf8(stored)
    .expect("utf-8")
    .replace("evil", "EVIL");
  db.execute(
    "UPDATE bundles SET bytes = ?1 WHERE hash = ?2",
    rusqlite::params![tampered.as_bytes(), hash],
  )
  .expect("tampered");
  let epoch = control.deploy("app", Some(json!({ "version": 2 }))).await;
  tokio::time::sleep(Duration::from_secs(2)).await;
  assert_eq!(
    body_of(&format!("{url}/app/")).await.as_deref(),
    Some("good"),
    "the edge refuses the bundle"
  );
  assert!(
    control.edge_epochs().await.iter().all(|&e| e < epoch),
    "and does not ack it"
  );
}

/// Runs `outpost <args>` in `dir` with credentials kept in `config`.
fn cli(dir: &Path, config: &Path, args: &[&str]) -> std::process::Output {
  outpost()
    .args(args)
    .current_dir(dir)
    .env("OUTPOST_CONFIG_DIR", config)
    .env_remove("OUTPOST_URL")
    .env_remove("OUTPOST_TOKEN")
    .output()
    .expect("outpost runs")
}

fn stdout_of(output: &std::process::Output) -> String {
  assert!(
    output.status.success(),
    "failed: {}{}",
    String::from_utf8_lossy(&output.stdout),
    String::from_utf8_lossy(&output.stderr)
  );
  String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn outpost_deploy_reports_every_edge_and_rolls_back(backend: Backend) {
  let data = tempfile::tempdir().expect("temp dir");
  let storage = Storage::new(backend, &data.path().join("control")).await;
  let control = Control::start_with(&storage, 0, 0, None);
  let mut edges = control.start_edges(&storage, data.path(), 3);
  let project = data.path().join("project");
  std::fs::create_dir_all(project.join("lib")).expect("project folder");
  std::fs::write(
    project.join("worker.ts"),
    "import { greet } from './lib/greet.ts';\nexport default { fetch(_r: Request, env: { WHO: string }) { return new Response(greet(env.WHO)); } };\n",
  )
  .expect("entry");
  std::fs::write(
    project.join("lib/greet.ts"),
    "export const greet = (who: string): string => `hello ${who}`;\n",
  )
  .expect("module");
  let toml = |who: &str| {
    format!(
      "name = \"greeter\"\nmain = \"worker.ts\"\nroutes = [\"*/greet/*\"]\n[vars]\nWHO = \"{who}\"\n"
    )
  };
  std::fs::write(project.join("outpost.toml"), toml("world")).expect("outpost.toml");
  let config = data.path().join("config");

  let refused = cli(&project, &config, &["deploy"]);
  assert!(!refused.status.success());
  assert!(
    String::from_utf8_lossy(&refused.stderr).contains("outpost login"),
    "no credentials yet"
  );
  stdout_of(&cli(
    &project,
    &config,
    &["login", "--url", &control.api, "--token", &control.admin],
  ));
  #[cfg(unix)]
  {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(config.join("credentials.json"))
      .expect("saved")
      .permissions()
      .mode();
    assert_eq!(mode & 0o777, 0o600, "credentials are private");
  }

  let out = stdout_of(&cli(&project, &config, &["deploy"]));
  assert!(out.contains("uploaded greeter v1, 2 module(s)"), "{out}");
  assert!(out.contains("3/3 edges serving v1"), "{out}");
  for (_, url) in &edges {
    assert_eq!(
      body_of(&format!("{url}/greet/")).await.as_deref(),
      Some("hello world")
    );
  }
  std::fs::write(project.join("outpost.toml"), toml("moon")).expect("outpost.toml");
  let out = stdout_of(&cli(&project, &config, &["deploy"]));
  assert!(out.contains("3/3 edges serving v2"), "{out}");
  for (_, url) in &edges {
    assert_eq!(
      body_of(&format!("{url}/greet/")).await.as_deref(),
      Some("hello moon")
    );
  }
  let out = stdout_of(&cli(&project, &config, &["versions"]));
  assert!(
    out
      .lines()
      .any(|l| l.starts_with("v2") && l.contains("100%")),
    "{out}"
  );
  let out = stdout_of(&cli(&project, &config, &["rollback"]));
  assert!(out.contains("3/3 edges serving v1"), "{out}");
  for (_, url) in &edges {
    assert_eq!(
      body_of(&format!("{url}/greet/")).await.as_deref(),
      Some("hello world")
    );
  }

  // A gradual rollout from the CLI: both versions answer.
  let out = stdout_of(&cli(
    &project,
    &config,
    &["versions", "deploy", "v2@30%", "v1@70%"],
  ));
  assert!(out.contains("greeter now serves v2 30% + v1 70%"), "{out}");
  assert!(out.contains("3/3 edges serving v2 30% + v1 70%"), "{out}");
  let out = stdout_of(&cli(&project, &config, &["versions", "list"]));
  assert!(
    out
      .lines()
      .any(|l| l.starts_with("v1") && l.contains("70%")),
    "{out}"
  );
  assert!(
    out
      .lines()
      .any(|l| l.starts_with("v2") && l.contains("30%")),
    "{out}"
  );
  let mut answers = std::collections::BTreeSet::new();
  for _ in 0..200 {
    answers.insert(
      body_of(&format!("{}/greet/", edges[0].1))
        .await
        .unwrap_or_default(),
    );
    if answers.len() == 2 {
      break;
    }
  }
  assert_eq!(answers.len(), 2, "both versions answer: {answers:?}");
  let unparsed = cli(
    &project,
    &config,
    &["versions", "deploy", "latest@30%", "v1@70%"],
  );
  assert!(
    String::from_utf8_lossy(&unparsed.stderr).contains("is not a version share"),
    "{}",
    String::from_utf8_lossy(&unparsed.stderr)
  );
  let refused = cli(
    &project,
    &config,
    &["versions", "deploy", "v2@30%", "v1@60%"],
  );
  assert!(
    String::from_utf8_lossy(&refused.stderr).contains("sum to 100"),
    "{}",
    String::from_utf8_lossy(&refused.stderr)
  );
  let out = stdout_of(&cli(&project, &config, &["versions", "deploy", "v1"]));
  assert!(out.contains("3/3 edges serving v1"), "{out}");

  // An edge that is down holds the deploy up, and it fails naming it.
  drop(edges.pop());
  std::fs::write(project.join("outpost.toml"), toml("sun")).expect("outpost.toml");
  let late = cli(&project, &config, &["deploy", "--timeout", "2"]);
  assert!(!late.status.success());
  let stderr = String::from_utf8_lossy(&late.stderr);
  assert!(
    stderr.contains("2/3 edges serving v3") && stderr.contains("not yet after 2 s"),
    "{stderr}"
  );

  // Flags and the environment name the control plane as well.
  let out = outpost()
    .args(["routes", "list"])
    .env("OUTPOST_URL", &control.api)
    .env("OUTPOST_TOKEN", &control.admin)
    .env("OUTPOST_CONFIG_DIR", data.path().join("nowhere"))
    .output()
    .expect("runs");
  assert_eq!(stdout_of(&out).trim(), "*/greet/* -> greeter");
}

async fn an_upload_cut_off_by_a_crash_stores_nothing(backend: Backend) {
  use std::io::Write;
  let data = tempfile::tempdir().expect("temp dir");
  let storage = Storage::new(backend, &data.path().join("control")).await;
  let control = Control::start_with(&storage, 0, 0, None);
  let api_port = control.api_port;
  let admin = control.admin.clone();
  let source = "x".repeat(4 * 1024 * 1024);
  let bundle = json!({
    "main": "worker.js",
    "modules": { "worker.js": format!("export default {{ fetch() {{ return new Response('{}'.length + ''); }} }};", source) },
  })
  .to_string();
  // Half of the upload, then the control plane is killed (SIGKILL).
  let mut stream = std::net::TcpStream::connect(("127.0.0.1", api_port)).expect("connect");
  write!(
    stream,
    "POST /v1/workers/big/versions HTTP/1.1\r\nHost: control\r\nAuthorization: Bearer {admin}\r\nContent-Length: {}\r\n\r\n",
    bundle.len()
  )
  .expect("head");
  stream
    .write_all(&bundle.as_bytes()[..bundle.len() / 2])
    .expect("half the body");
  stream.flush().expect("flush");
  tokio::time::sleep(Duration::from_millis(200)).await;
  drop(control);
  drop(stream);

  let control = Control::start_with(&storage, api_port, 0, Some(&admin));
  let (status, body) = control
    .call(reqwest::Method::GET, "/workers/big/versions", None)
    .await;
  assert_eq!(
    (status, &body["versions"]),
    (200, &json!([])),
    "nothing of the cut-off upload"
  );
  let (status, body) = control
    .call(
      reqwest::Method::POST,
      "/workers/big/versions",
      Some(serde_json::from_str(&bundle).expect("json")),
    )
    .await;
  assert_eq!(
    (status, body["version"]["number"].as_u64()),
    (201, Some(1)),
    "{body}"
  );
}

#[tokio::test]
async fn two_replicas_on_postgres_serve_one_state_and_edges_catch_up() {
  let database = fresh_postgres_database().await;
  let storage = ["--database", database.as_str()];
  let a = Control::start_on(&storage, 0, 0, None);
  let (a_api, a_sync) = (a.api_port, a.sync_port);
  let admin = a.admin.clone();
  let b = Control::start_on(&storage, 0, 0, Some(&admin));
  let (status, body) = b
    .call(
      reqwest::Method::POST,
      "/tokens",
      Some(json!({ "scope": "edge-join" })),
    )
    .await;
  assert_eq!(status, 201, "{body}");
  let join = body["token"].as_str().expect("token").to_owned();

  // The edge enrols and syncs through A; deployments go through B.
  let data = tempfile::tempdir().expect("temp dir");
  let edge_data = data.path().join("edge");
  let (edge, url) = start_edge(&a.api, Some(&join), &edge_data);
  b.upload("blog", "v1").await;
  b.deploy("blog", Some(json!({ "version": 1 }))).await;
  wait_for(&format!("{url}/blog/"), "v1").await;
  let (_, edges) = b.call(reqwest::Method::GET, "/edges", None).await;
  assert_eq!(
    edges["edges"].as_array().map(Vec::len),
    Some(1),
    "B sees the edge A enrolled"
  );

  // A dies; the edge serves on, and from disk after a restart.
  drop(a);
  b.upload("blog", "v2").await;
  b.deploy("blog", Some(json!({ "version": 2 }))).await;
  assert_eq!(
    body_of(&format!("{url}/blog/")).await.as_deref(),
    Some("v1")
  );
  drop(edge);
  let (_edge, url) = start_edge(&format!("http://127.0.0.1:{a_api}/v1"), None, &edge_data);
  assert_eq!(
    body_of(&format!("{url}/blog/")).await.as_deref(),
    Some("v1")
  );

  // A comes back: the edge catches up with what B deployed meanwhile.
  let _a = Control::start_on(&storage, a_api, a_sync, Some(&admin));
  wait_for(&format!("{url}/blog/"), "v2").await;
}

async fn a_removed_edge_is_shut_out(backend: Backend) {
  let data = tempfile::tempdir().expect("temp dir");
  let storage = Storage::new(backend, &data.path().join("control")).await;
  let control = Control::start_with(&storage, 0, 0, None);
  let edges = control.start_edges(&storage, data.path(), 2);
  control.upload("app", "v1").await;
  control.deploy("app", Some(json!({ "version": 1 }))).await;
  for (_, url) in &edges {
    wait_for(&format!("{url}/app/"), "v1").await;
  }
  let (_, listed) = control.call(reqwest::Method::GET, "/edges", None).await;
  let removed = listed["edges"][0]["id"].as_str().expect("an id").to_owned();
  let kept = listed["edges"][1]["id"].as_str().expect("an id").to_owned();
  let out = outpost()
    .args([
      "edges",
      "remove",
      &removed,
      "--url",
      &control.api,
      "--token",
      &control.admin,
    ])
    .output()
    .expect("runs");
  assert!(
    out.status.success(),
    "{}",
    String::from_utf8_lossy(&out.stderr)
  );

  // The removed node hears of no more deployments; the other one does.
  control.upload("app", "v2").await;
  let epoch = control.deploy("app", Some(json!({ "version": 2 }))).await;
  let (_, listed) = control.call(reqwest::Method::GET, "/edges", None).await;
  let ids: Vec<&str> = listed["edges"]
    .as_array()
    .expect("edges")
    .iter()
    .filter_map(|e| e["id"].as_str())
    .collect();
  assert_eq!(ids, [kept.as_str()]);
  control.wait_for_acks(epoch).await;
  // Time for the removed node to pick v2 up too, were it still connected.
  tokio::time::sleep(Duration::from_millis(500)).await;
  let mut answers = Vec::new();
  for (_, url) in &edges {
    answers.push(body_of(&format!("{url}/app/")).await.unwrap_or_default());
  }
  answers.sort();
  assert_eq!(
    answers,
    ["v1", "v2"],
    "one edge moved on, the removed one did not"
  );
  let (status, body) = control
    .call(reqwest::Method::DELETE, &format!("/edges/{removed}"), None)
    .await;
  assert_eq!(status, 404, "{body}");
}

on_both_stores!(
  a_removed_edge_is_shut_out,
  deployments_rollbacks_and_splits_reach_every_edge,
  edges_serve_on_while_the_control_plane_is_down,
  outpost_deploy_reports_every_edge_and_rolls_back,
  an_upload_cut_off_by_a_crash_stores_nothing,
);
