//! KV from the command line: `outpost dev` keeping KV across restarts (and
//! not, with `--no-persist`), `outpost kv ... --local` on the same store,
//! and `outpost kv` against a control plane.

use std::path::Path;
use std::process::Output;

use reqwest::Method;

use crate::cli::start_dev_at;
use crate::cluster::Process;
use crate::cluster::{Control, Storage};
use crate::util::{Backend, copy_fixture, outpost};

/// The `kv` fixture in a temporary folder, with `KV` bound in outpost.toml.
fn kv_project() -> tempfile::TempDir {
  let dir = copy_fixture("kv");
  std::fs::write(
    dir.path().join("outpost.toml"),
    "name = \"kv\"\n[[kv_namespaces]]\nbinding = \"KV\"\nid = \"dev-ns\"\n",
  )
  .expect("write outpost.toml");
  dir
}

async fn dev(dir: &Path, extra: &[&str]) -> (Process, String) {
  let (child, url) = start_dev_at(&dir.join("worker.js"), extra).await;
  (Process(child), url.trim_end_matches('/').to_owned())
}

async fn request(method: Method, url: &str, body: &str) -> (u16, String) {
  let response = reqwest::Client::new()
    .request(method, url)
    .body(body.to_owned())
    .send()
    .await
    .expect("the worker answers");
  let status = response.status().as_u16();
  (status, response.text().await.expect("text"))
}

/// `outpost <args>` run in `dir`.
fn run_in(dir: &Path, args: &[&str]) -> Output {
  outpost()
    .current_dir(dir)
    .args(args)
    .output()
    .expect("outpost runs")
}

fn succeeded(output: &Output) -> String {
  assert!(
    output.status.success(),
    "{}",
    String::from_utf8_lossy(&output.stderr)
  );
  String::from_utf8(output.stdout.clone()).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_keeps_kv_across_restarts() {
  let project = kv_project();
  let (server, url) = dev(project.path(), &[]).await;
  assert_eq!(
    request(Method::PUT, &format!("{url}/v/visits"), "41").await,
    (200, "stored".to_owned())
  );
  drop(server);
  assert!(
    project.path().join(".outpost/state/kv.sqlite3").is_file(),
    "the store is beside the worker"
  );

  let (_server, url) = dev(project.path(), &[]).await;
  assert_eq!(
    request(Method::GET, &format!("{url}/v/visits"), "").await,
    (200, "41".to_owned()),
    "the value survives a restart"
  );

  // `outpost kv --local` works on the same store, while dev runs.
  let value = succeeded(&run_in(
    project.path(),
    &["kv", "key", "get", "visits", "--local", "--binding", "KV"],
  ));
  assert_eq!(value, "41", "raw bytes, no newline");
  std::fs::write(project.path().join("value.bin"), [0u8, 159, 146, 150]).expect("write");
  succeeded(&run_in(
    project.path(),
    &[
      "kv",
      "key",
      "put",
      "bin",
      "--path",
      "value.bin",
      "--local",
      "--binding",
      "KV",
    ],
  ));
  let (status, _) = request(Method::GET, &format!("{url}/v/bin?type=arrayBuffer"), "").await;
  assert_eq!(status, 200, "the worker sees a key put from the CLI");
  let listed = succeeded(&run_in(
    project.path(),
    &["kv", "key", "list", "--local", "--namespace-id", "dev-ns"],
  ));
  assert_eq!(listed, "bin\nvisits\n");
  let refused = run_in(
    project.path(),
    &[
      "kv",
      "key",
      "put",
      "k",
      "v",
      "--ttl",
      "5",
      "--local",
      "--binding",
      "KV",
    ],
  );
  assert!(!refused.status.success());
  assert!(
    String::from_utf8_lossy(&refused.stderr).contains("at least 60 seconds"),
    "{}",
    String::from_utf8_lossy(&refused.stderr)
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn persist_to_and_no_persist() {
  let project = kv_project();
  let elsewhere = tempfile::tempdir().expect("temp dir");
  let state = elsewhere.path().to_str().expect("utf-8");
  let (server, url) = dev(project.path(), &["--persist-to", state]).await;
  request(Method::PUT, &format!("{url}/v/k"), "kept").await;
  drop(server);
  assert!(elsewhere.path().join("kv.sqlite3").is_file());
  assert!(!project.path().join(".outpost/state").exists());
  let (server, url) = dev(project.path(), &["--persist-to", state]).await;
  assert_eq!(
    request(Method::GET, &format!("{url}/v/k"), "").await,
    (200, "kept".to_owned())
  );
  drop(server);

  let (server, url) = dev(project.path(), &["--no-persist"]).await;
  request(Method::PUT, &format!("{url}/v/k"), "gone").await;
  drop(server);
  let (_server, url) = dev(project.path(), &["--no-persist"]).await;
  assert_eq!(
    request(Method::GET, &format!("{url}/v/k"), "").await.0,
    404,
    "nothing kept"
  );
  assert!(!project.path().join(".outpost/state").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn outpost_kv_against_the_control_plane() {
  let dir = tempfile::tempdir().expect("temp dir");
  let storage = Storage::new(Backend::Sqlite, &dir.path().join("control")).await;
  let control = Control::start_with(&storage, 0, 0, None);
  let kv_write = storage.token("kv-write");
  let with_api = |args: &[&str]| -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--url", &control.api, "--token", &kv_write]);
    run_in(dir.path(), &all)
  };

  let created = succeeded(&with_api(&["kv", "namespace", "create", "sessions"]));
  let id = created.lines().last().expect("the id").to_owned();
  assert_eq!(id.len(), 32, "{created:?}");
  let listed = succeeded(&with_api(&["kv", "namespace", "list"]));
  assert_eq!(listed, format!("{id}\tsessions\n"));

  succeeded(&with_api(&[
    "kv",
    "key",
    "put",
    "user/1",
    "ann",
    "--namespace-id",
    &id,
    "--metadata",
    r#"{"admin":true}"#,
  ]));
  let value = succeeded(&with_api(&[
    "kv",
    "key",
    "get",
    "user/1",
    "--namespace-id",
    &id,
  ]));
  assert_eq!(value, "ann");

  let pairs = dir.path().join("pairs.json");
  std::fs::write(
    &pairs,
    r#"[{"key":"user/2","value":"bob"},{"key":"user/3","value":"AAEC","base64":true,"expiration_ttl":3600}]"#,
  )
  .expect("write");
  succeeded(&with_api(&[
    "kv",
    "bulk",
    "put",
    pairs.to_str().expect("utf-8"),
    "--namespace-id",
    &id,
  ]));
  let listed = succeeded(&with_api(&[
    "kv",
    "key",
    "list",
    "--prefix",
    "user/",
    "--namespace-id",
    &id,
  ]));
  assert_eq!(listed, "user/1\nuser/2\nuser/3\n");
  let bytes = with_api(&["kv", "key", "get", "user/3", "--namespace-id", &id]);
  assert_eq!(bytes.stdout, [0u8, 1, 2], "raw bytes on stdout");

  succeeded(&with_api(&[
    "kv",
    "key",
    "delete",
    "user/1",
    "--namespace-id",
    &id,
  ]));
  let missing = with_api(&["kv", "key", "get", "user/1", "--namespace-id", &id]);
  assert!(!missing.status.success());
  assert!(
    String::from_utf8_lossy(&missing.stderr).contains("no key"),
    "{}",
    String::from_utf8_lossy(&missing.stderr)
  );

  let read_only = storage.token("read-only");
  let refused = run_in(
    dir.path(),
    &[
      "kv",
      "key",
      "put",
      "x",
      "y",
      "--namespace-id",
      &id,
      "--url",
      &control.api,
      "--token",
      &read_only,
    ],
  );
  assert!(!refused.status.success());
  assert!(
    String::from_utf8_lossy(&refused.stderr).contains("kv-write scope"),
    "{}",
    String::from_utf8_lossy(&refused.stderr)
  );
}

#[test]
fn env_picks_the_environments_binding() {
  let project = kv_project();
  std::fs::write(
    project.path().join("outpost.toml"),
    "name = \"kv\"\n[[kv_namespaces]]\nbinding = \"KV\"\nid = \"dev-ns\"\n\n\
     [env.staging]\n[[env.staging.kv_namespaces]]\nbinding = \"KV\"\nid = \"staging-ns\"\n",
  )
  .expect("write outpost.toml");
  succeeded(&run_in(
    project.path(),
    &[
      "kv",
      "key",
      "put",
      "where",
      "staging",
      "--local",
      "--binding",
      "KV",
      "--env",
      "staging",
    ],
  ));
  let staging = succeeded(&run_in(
    project.path(),
    &[
      "kv",
      "key",
      "list",
      "--local",
      "--namespace-id",
      "staging-ns",
    ],
  ));
  assert_eq!(staging, "where\n");
  let default = succeeded(&run_in(
    project.path(),
    &["kv", "key", "list", "--local", "--namespace-id", "dev-ns"],
  ));
  assert_eq!(
    default, "",
    "the default environment's namespace is untouched"
  );
}
