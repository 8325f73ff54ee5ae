//! `outpost secret`: values from standard input bound into `env` on the
//! edges, a new version per change (so a rollback restores the secrets
//! that went with the code), names that clash with vars and oversized
//! values refused, and nothing in the clear in the store: the SQLite file
//! and its WAL, and every PostgreSQL row.

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::cluster::{Control, Storage, start_edge};
use crate::util::{Backend, outpost};

const SECRET: &str = "s3cr3t-Value-Only-In-Env-7f3a";

const WORKER: &str = r#"export default {
  fetch(request, env) {
    return Response.json({ greeting: env.GREETING, key: env.API_KEY ?? null });
  },
};
"#;

/// A project folder for worker `vault` with a var GREETING.
fn project() -> tempfile::TempDir {
  let dir = tempfile::tempdir().expect("temp dir");
  std::fs::write(dir.path().join("worker.js"), WORKER).expect("worker.js");
  std::fs::write(
    dir.path().join("wrangler.toml"),
    "name = \"vault\"\nmain = \"worker.js\"\n\n[vars]\nGREETING = \"hello\"\n",
  )
  .expect("wrangler.toml");
  dir
}

/// `outpost <args>` in `dir` against `control`, with `stdin` as its input.
fn run(control: &Control, dir: &Path, args: &[&str], stdin: &str) -> Output {
  let mut child = outpost()
    .args(args)
    .args(["--url", &control.api, "--token", &control.admin])
    .current_dir(dir)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("outpost runs");
  child
    .stdin
    .take()
    .expect("stdin")
    .write_all(stdin.as_bytes())
    .expect("write stdin");
  child.wait_with_output().expect("outpost ends")
}

fn text(output: &Output) -> String {
  format!(
    "{}{}",
    String::from_utf8_lossy(&output.stdout),
    String::from_utf8_lossy(&output.stderr)
  )
}

/// Waits until the edge answers with `key` as env.API_KEY.
async fn wait_for_key(edge: &str, key: Value) {
  let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
  loop {
    let answer = reqwest::Client::new()
      .get(format!("{edge}/"))
      .header("host", "vault.localhost")
      .send()
      .await
      .expect("the edge answers");
    let bytes = answer.bytes().await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if body["key"] == key {
      assert_eq!(body["greeting"], "hello", "{body}");
      return;
    }
    assert!(
      std::time::Instant::now() < deadline,
      "env.API_KEY is {body}, not {key}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
  }
}

async fn secrets_reach_env_and_stay_sealed(backend: Backend) {
  let dir = tempfile::tempdir().expect("temp dir");
  let storage = Storage::new(backend, &dir.path().join("control")).await;
  let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  let control = Control::start_on_env(&storage.args(), 0, 0, None, &[("OUTPOST_SECRETS_KEY", key)]);
  let (_edge, edge) = start_edge(
    &control.api,
    Some(&storage.token("edge-join")),
    &dir.path().join("edge"),
  );
  let folder = project();
  let here = folder.path();

  let deployed = run(&control, here, &["deploy"], "");
  assert!(deployed.status.success(), "{}", text(&deployed));
  wait_for_key(&edge, Value::Null).await;

  // The value comes from standard input and is never printed.
  let put = run(
    &control,
    here,
    &["secret", "put", "API_KEY"],
    &format!("{SECRET}\n"),
  );
  assert!(put.status.success(), "{}", text(&put));
  assert!(
    text(&put).contains("v2 made and deployed"),
    "{}",
    text(&put)
  );
  assert!(!text(&put).contains(SECRET));
  wait_for_key(&edge, Value::from(SECRET)).await;
  let listed = run(&control, here, &["secret", "list"], "");
  assert_eq!(String::from_utf8_lossy(&listed.stdout), "API_KEY\n");

  // Refused: a var's name, and a value over 5 KiB.
  let clash = run(&control, here, &["secret", "put", "GREETING"], "x");
  assert!(
    !clash.status.success() && text(&clash).contains("GREETING is a var"),
    "{}",
    text(&clash)
  );
  let big = run(&control, here, &["secret", "put", "BIG"], &"x".repeat(6000));
  assert!(
    !big.status.success() && text(&big).contains("at most 5120"),
    "{}",
    text(&big)
  );

  // The same code deployed again is the same version: secrets stay.
  let again = run(&control, here, &["deploy"], "");
  assert!(text(&again).contains("v2 (unchanged)"), "{}", text(&again));

  // Rolling back past the redeployment of v2 brings back v1, which had
  // no secret; changing secrets from there starts from v1.
  for _ in 0..2 {
    let (status, body) = control
      .call(reqwest::Method::POST, "/workers/vault/rollback", None)
      .await;
    assert_eq!(status, 201, "{body}");
  }
  wait_for_key(&edge, Value::Null).await;
  let (status, body) = control
    .call(reqwest::Method::POST, "/workers/vault/rollback", None)
    .await;
  assert_eq!(status, 409, "nothing before v1: {body}");
  let bulk = here.join("secrets.env");
  std::fs::write(&bulk, format!("API_KEY={SECRET}-bulk\nOTHER=1\n")).expect("bulk file");
  let put = run(&control, here, &["secret", "bulk", "secrets.env"], "");
  assert!(
    text(&put).contains("2 secret(s) set on vault: v3 made and deployed"),
    "{}",
    text(&put)
  );
  wait_for_key(&edge, Value::from(format!("{SECRET}-bulk"))).await;
  let removed = run(&control, here, &["secret", "delete", "OTHER"], "");
  assert!(
    text(&removed).contains("v4 made and deployed"),
    "{}",
    text(&removed)
  );

  // Nowhere in the store in the clear.
  match backend {
    Backend::Sqlite => {
      for entry in std::fs::read_dir(dir.path().join("control")).expect("data folder") {
        let path = entry.expect("entry").path();
        if !path.is_file() {
          continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        let found = bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
        assert!(!found, "{} holds the secret in the clear", path.display());
      }
    }
    Backend::Postgres => {
      let url = storage.0.last().expect("the database URL");
      let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
      tokio::spawn(connection);
      let tables = client
        .query(
          "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
          &[],
        )
        .await
        .expect("tables");
      let mut sealed = 0;
      for table in tables {
        let name: String = table.get(0);
        let rows = client
          .query(
            &format!("SELECT row_to_json(t)::text FROM \"{name}\" t"),
            &[],
          )
          .await
          .expect("rows");
        for row in rows {
          let text: String = row.get(0);
          assert!(
            !text.contains(SECRET),
            "{name} holds the secret in the clear: {text}"
          );
          sealed += usize::from(name == "versions" && text.contains("\"secrets\":\""));
        }
      }
      assert_eq!(sealed, 3, "v2, v3 and v4 hold sealed secrets");
    }
  }
}

on_both_stores!(secrets_reach_env_and_stay_sealed);
