//! The control plane's HTTP API on SQLite, served on loopback and called
//! with a real HTTP client; and `outpost control` run as a process.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;

use outpost_control::certs::Authority;
use outpost_control::store::{PostgresStore, SqliteStore, Store};
use outpost_control::{ControlPlane, app, server};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::util::{Backend, fresh_postgres_database, make_token, outpost};

/// A child process killed when dropped, so a failing test leaves none
/// behind.
struct Killed(std::process::Child);

impl Drop for Killed {
  fn drop(&mut self) {
    let _ = self.0.kill();
    let _ = self.0.wait();
  }
}

/// A control plane on a fresh store, on 127.0.0.1 port 0.
pub(crate) struct Control {
  /// The API's base URL, `http://127.0.0.1:P/v1`.
  pub base: String,
  /// The admin token.
  pub admin: String,
  pub client: reqwest::Client,
  /// Where it is, for moving its clock and reaching its store.
  pub app: Arc<ControlPlane>,
  _stop: oneshot::Sender<()>,
  _dir: tempfile::TempDir,
}

impl Control {
  pub async fn start(backend: Backend) -> Self {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = match backend {
      Backend::Sqlite => {
        Arc::new(SqliteStore::open(&dir.path().join("control.db")).expect("database opens"))
      }
      Backend::Postgres => Arc::new(
        PostgresStore::connect(&fresh_postgres_database().await)
          .await
          .expect("database opens"),
      ),
    };
    let admin = app::bootstrap_admin_token(&*store)
      .await
      .expect("bootstrap")
      .expect("a first start makes an admin token");
    assert!(
      app::bootstrap_admin_token(&*store)
        .await
        .expect("bootstrap")
        .is_none(),
      "only the first start makes one"
    );
    let authority = Authority::load_or_create(&*store, None).await.expect("CA");
    let control = ControlPlane::new(store, authority, "127.0.0.1:1".into())
      .await
      .expect("control plane");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
      .await
      .expect("bind");
    let base = format!("http://{}/v1", listener.local_addr().expect("address"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::run(listener, control.clone(), async {
      let _ = stopped.await;
    }));
    Self {
      base,
      admin,
      client: reqwest::Client::new(),
      app: control,
      _stop: stop,
      _dir: dir,
    }
  }

  pub async fn call(
    &self,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
  ) -> (u16, Value) {
    let mut request = self.client.request(method, format!("{}{path}", self.base));
    if let Some(token) = token {
      request = request.bearer_auth(token);
    }
    if let Some(body) = body {
      request = request.body(body);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    assert_eq!(
      response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok()),
      Some("application/json")
    );
    let bytes = response.bytes().await.expect("a body");
    (status, serde_json::from_slice(&bytes).expect("a JSON body"))
  }

  pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string().into_bytes());
    self.call(method, path, Some(&self.admin), body).await
  }

  async fn upload(&self, worker: &str, text: &str) -> (u16, Value) {
    let bundle = json!({
      "main": "worker.js",
      "modules": { "worker.js": format!("export default {{ fetch() {{ return new Response({text:?}); }} }};") },
    });
    self
      .admin(
        Method::POST,
        &format!("/workers/{worker}/versions"),
        Some(bundle),
      )
      .await
  }

  async fn state(&self) -> Value {
    self.admin(Method::GET, "/state", None).await.1
  }
}

on_both_stores!(
  versions_are_content_addressed_and_numbered,
  deployments_splits_and_rollbacks_change_what_edges_serve,
  routes_are_unique_per_pattern,
  tokens_and_scopes_guard_every_call,
  bad_uploads_are_refused_and_store_nothing,
);

fn error_code(body: &Value) -> &str {
  body["error"]["code"]
    .as_str()
    .unwrap_or_else(|| panic!("not an error body: {body}"))
}

async fn versions_are_content_addressed_and_numbered(backend: Backend) {
  let control = Control::start(backend).await;
  let (status, first) = control.upload("hello", "v1").await;
  assert_eq!(
    (status, first["created"].as_bool()),
    (201, Some(true)),
    "{first}"
  );
  assert_eq!(first["version"]["number"], 1);
  let (status, again) = control.upload("hello", "v1").await;
  assert_eq!(
    (status, again["created"].as_bool()),
    (200, Some(false)),
    "identical content is a no-op"
  );
  assert_eq!(again["version"], first["version"]);
  let (status, second) = control.upload("hello", "v2").await;
  assert_eq!(
    (status, second["version"]["number"].as_u64()),
    (201, Some(2))
  );
  assert_ne!(second["version"]["hash"], first["version"]["hash"]);

  let (_, listed) = control
    .admin(Method::GET, "/workers/hello/versions", None)
    .await;
  let numbers: Vec<u64> = listed["versions"]
    .as_array()
    .expect("list")
    .iter()
    .filter_map(|v| v["number"].as_u64())
    .collect();
  assert_eq!(numbers, [1, 2]);
}

async fn deployments_splits_and_rollbacks_change_what_edges_serve(backend: Backend) {
  let control = Control::start(backend).await;
  for text in ["v1", "v2", "v3"] {
    control.upload("hello", text).await;
  }
  let serving = |state: &Value| -> Vec<(u64, u64)> {
    state["workers"][0]["versions"]
      .as_array()
      .map(|versions| {
        versions
          .iter()
          .map(|v| {
            (
              v["number"].as_u64().unwrap_or(0),
              v["percent"].as_u64().unwrap_or(0),
            )
          })
          .collect()
      })
      .unwrap_or_default()
  };
  assert_eq!(control.state().await["epoch"], 0);

  let (status, body) = control
    .admin(
      Method::POST,
      "/workers/hello/deployments",
      Some(json!({ "version": 1 })),
    )
    .await;
  assert_eq!(status, 201, "{body}");
  let state = control.state().await;
  assert_eq!(serving(&state), [(1, 100)]);
  let epoch = state["epoch"].as_u64().expect("epoch");
  assert!(epoch > 0);

  control
    .admin(
      Method::POST,
      "/workers/hello/deployments",
      Some(json!({ "version": 2 })),
    )
    .await;
  let split =
    json!({ "versions": [{ "version": 3, "percent": 90 }, { "version": 2, "percent": 10 }] });
  let (status, body) = control
    .admin(Method::POST, "/workers/hello/deployments", Some(split))
    .await;
  assert_eq!(status, 201, "{body}");
  let state = control.state().await;
  assert_eq!(serving(&state), [(3, 90), (2, 10)]);
  assert!(
    state["epoch"].as_u64() > Some(epoch),
    "each deployment moves the epoch on"
  );

  // Rolling back steps through the history: split -> v2 -> v1.
  let (status, body) = control
    .admin(Method::POST, "/workers/hello/rollback", None)
    .await;
  assert_eq!(status, 201, "{body}");
  assert_eq!(serving(&control.state().await), [(2, 100)]);
  control
    .admin(Method::POST, "/workers/hello/rollback", None)
    .await;
  assert_eq!(serving(&control.state().await), [(1, 100)]);
  let (status, body) = control
    .admin(Method::POST, "/workers/hello/rollback", None)
    .await;
  assert_eq!(
    (status, error_code(&body)),
    (409, "conflict"),
    "nothing before v1: {body}"
  );

  let (_, history) = control
    .admin(Method::GET, "/workers/hello/deployments", None)
    .await;
  let history = history["deployments"].as_array().expect("history");
  assert_eq!(history.len(), 5, "three deployments and two rollbacks");
  assert!(
    history[0]["restores"].is_number(),
    "the newest is a rollback"
  );

  for (body, code, status) in [
    (json!({ "version": 9 }), "not_found", 404),
    (
      json!({ "versions": [{ "version": 1, "percent": 90 }, { "version": 2, "percent": 5 }] }),
      "invalid",
      400,
    ),
    (
      json!({ "versions": [{ "version": 1, "percent": 50 }, { "version": 1, "percent": 50 }] }),
      "invalid",
      400,
    ),
    (json!({ "version": 1, "versions": [] }), "invalid", 400),
    (json!({ "release": 1 }), "malformed", 400),
  ] {
    let (got, answer) = control
      .admin(
        Method::POST,
        "/workers/hello/deployments",
        Some(body.clone()),
      )
      .await;
    assert_eq!(
      (got, error_code(&answer)),
      (status, code),
      "{body}: {answer}"
    );
  }
  assert_eq!(
    serving(&control.state().await),
    [(1, 100)],
    "refused deployments change nothing"
  );
}

async fn routes_are_unique_per_pattern(backend: Backend) {
  let control = Control::start(backend).await;
  control.upload("api", "api").await;
  control.upload("www", "www").await;
  let route = |pattern: &str, worker: &str| json!({ "pattern": pattern, "worker": worker });
  let (status, body) = control
    .admin(
      Method::PUT,
      "/routes",
      Some(route("API.example.com/*", "api")),
    )
    .await;
  assert_eq!(status, 200, "{body}");
  assert_eq!(body["route"]["pattern"], "api.example.com/*");
  let (status, _) = control
    .admin(
      Method::PUT,
      "/routes",
      Some(route("api.example.com/*", "api")),
    )
    .await;
  assert_eq!(status, 200, "the same route again is fine");
  let (status, body) = control
    .admin(
      Method::PUT,
      "/routes",
      Some(route("api.example.com/*", "www")),
    )
    .await;
  assert_eq!((status, error_code(&body)), (409, "conflict"));
  assert!(
    body["error"]["message"]
      .as_str()
      .unwrap_or("")
      .contains("\"api\""),
    "{body}"
  );
  control
    .admin(
      Method::PUT,
      "/routes",
      Some(route("*.example.com/*", "www")),
    )
    .await;

  let (status, body) = control
    .admin(
      Method::PUT,
      "/routes",
      Some(route("x.example.com/*", "nobody")),
    )
    .await;
  assert_eq!((status, error_code(&body)), (404, "not_found"));
  let (status, body) = control
    .admin(Method::PUT, "/routes", Some(route("http://x.com/*", "api")))
    .await;
  assert_eq!((status, error_code(&body)), (400, "invalid"));

  let (_, listed) = control.admin(Method::GET, "/routes", None).await;
  assert_eq!(listed["routes"].as_array().map(Vec::len), Some(2));
  let (status, _) = control
    .admin(
      Method::DELETE,
      "/routes",
      Some(json!({ "pattern": "*.example.com/*" })),
    )
    .await;
  assert_eq!(status, 200);
  let (status, body) = control
    .admin(
      Method::DELETE,
      "/routes",
      Some(json!({ "pattern": "*.example.com/*" })),
    )
    .await;
  assert_eq!((status, error_code(&body)), (404, "not_found"));
  assert_eq!(
    control.state().await["routes"],
    json!([{ "pattern": "api.example.com/*", "worker": "api" }])
  );
}

async fn tokens_and_scopes_guard_every_call(backend: Backend) {
  let control = Control::start(backend).await;
  control.upload("hello", "v1").await;
  let (status, body) = control.call(Method::GET, "/state", None, None).await;
  assert_eq!((status, error_code(&body)), (401, "unauthorized"));
  let (status, body) = control
    .call(Method::GET, "/state", Some("opt_not-a-token"), None)
    .await;
  assert_eq!((status, error_code(&body)), (401, "unauthorized"));
  let (status, _) = control.call(Method::GET, "/health", None, None).await;
  assert_eq!(status, 200, "health needs no token");

  let token = |scope: &str| json!({ "scope": scope, "label": "test" });
  let (status, body) = control
    .admin(Method::POST, "/tokens", Some(token("read-only")))
    .await;
  assert_eq!(status, 201, "{body}");
  let reader = body["token"].as_str().expect("token").to_owned();
  let (_, body) = control
    .admin(Method::POST, "/tokens", Some(token("deploy")))
    .await;
  let deployer = body["token"].as_str().expect("token").to_owned();
  let (status, body) = control
    .admin(Method::POST, "/tokens", Some(token("owner")))
    .await;
  assert_eq!((status, error_code(&body)), (400, "invalid"));

  let deploy = Some(json!({ "version": 1 }).to_string().into_bytes());
  let (status, body) = control
    .call(
      Method::POST,
      "/workers/hello/deployments",
      Some(&reader),
      deploy.clone(),
    )
    .await;
  assert_eq!((status, error_code(&body)), (403, "forbidden"));
  let (status, _) = control
    .call(Method::GET, "/workers/hello/versions", Some(&reader), None)
    .await;
  assert_eq!(status, 200, "read-only reads");
  let (status, _) = control
    .call(
      Method::POST,
      "/workers/hello/deployments",
      Some(&deployer),
      deploy,
    )
    .await;
  assert_eq!(status, 201, "deploy deploys");
  let (status, body) = control
    .call(
      Method::POST,
      "/tokens",
      Some(&deployer),
      Some(token("admin").to_string().into_bytes()),
    )
    .await;
  assert_eq!(
    (status, error_code(&body)),
    (403, "forbidden"),
    "only admin makes tokens"
  );
}

async fn bad_uploads_are_refused_and_store_nothing(backend: Backend) {
  let control = Control::start(backend).await;
  let upload = |body: Vec<u8>| {
    control.call(
      Method::POST,
      "/workers/hello/versions",
      Some(&control.admin),
      Some(body),
    )
  };
  for (body, status, code) in [
    (b"{ not json".to_vec(), 400, "bad_bundle"),
    (
      br#"{"main":"w.js","modules":{"../w.js":"x"}}"#.to_vec(),
      400,
      "bad_bundle",
    ),
    (
      br#"{"main":"main.js","modules":{"w.js":"x"}}"#.to_vec(),
      400,
      "bad_bundle",
    ),
    (vec![b' '; 26 * 1024 * 1024], 413, "too_large"),
  ] {
    let (got, answer) = upload(body).await;
    assert_eq!((got, error_code(&answer)), (status, code), "{answer}");
  }
  let (status, body) = control.upload("Bad_Name", "x").await;
  assert_eq!((status, error_code(&body)), (400, "invalid"));
  let (_, listed) = control
    .admin(Method::GET, "/workers/hello/versions", None)
    .await;
  assert_eq!(listed["versions"], json!([]), "nothing was stored");
  let (status, body) = control.admin(Method::GET, "/nothing-here", None).await;
  assert_eq!((status, error_code(&body)), (404, "not_found"));
}

#[tokio::test]
async fn outpost_control_prints_its_admin_token_once_and_makes_more() {
  let data = tempfile::tempdir().expect("temp dir");
  let start = || {
    let mut child = outpost()
      .args(["control", "--listen", "127.0.0.1:0", "--data"])
      .arg(data.path())
      .stdout(Stdio::piped())
      .stderr(Stdio::null())
      .spawn()
      .expect("outpost control starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    loop {
      let line = lines.next().expect("a line").expect("text");
      let done = line.contains("API at");
      seen.push(line);
      if done {
        break;
      }
    }
    (Killed(child), seen)
  };
  let (child, first) = start();
  let admin = first
    .iter()
    .find(|line| line.starts_with("opt_"))
    .unwrap_or_else(|| panic!("no token printed: {first:?}"))
    .clone();
  let base = first
    .last()
    .and_then(|line| line.split_whitespace().find(|w| w.starts_with("http://")))
    .expect("the API address")
    .to_owned();

  // While it runs, another process makes a token; stdout is only the token.
  let deployer = make_token(&["--data".as_ref(), data.path().as_os_str()], "deploy");
  assert!(deployer.starts_with("opt_"), "{deployer:?}");

  let client = reqwest::Client::new();
  for token in [&admin, &deployer] {
    let status = client
      .get(format!("{base}/state"))
      .bearer_auth(token)
      .send()
      .await
      .expect("the API answers")
      .status();
    assert_eq!(status, 200);
  }
  drop(child);

  let (child, second) = start();
  assert!(
    !second.iter().any(|line| line.starts_with("opt_")),
    "no token on later starts: {second:?}"
  );
  drop(child);

  let refused = outpost()
    .args(["control", "token", "create", "--scope", "root", "--data"])
    .arg(data.path())
    .output()
    .expect("runs");
  assert!(!refused.status.success());
  assert!(String::from_utf8_lossy(&refused.stderr).contains("admin, deploy"));
  let empty = tempfile::tempdir().expect("temp dir");
  let refused = outpost()
    .args(["control", "token", "create", "--scope", "admin", "--data"])
    .arg(empty.path())
    .output()
    .expect("runs");
  assert!(!refused.status.success());
  assert!(String::from_utf8_lossy(&refused.stderr).contains("no control plane database"));
}
