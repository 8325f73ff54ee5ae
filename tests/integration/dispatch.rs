//! Dispatch namespaces (Workers for Platforms): user workers uploaded into
//! a namespace through the API and `outpost deploy --dispatch-namespace`,
//! never routed publicly, reached by a dispatcher worker's
//! `env.DISPATCHER.get(name, args, { limits })`.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use outpost_control::secrets::SecretsKey;

use crate::cluster::Control;
use crate::control_api::Control as ApiControl;
use crate::npm_projects::{control_and_edge, deploy_folder};
use crate::tail::Tail;
use crate::util::{Backend, DevProcess, copy_tree, fixtures_dir, outpost};

on_both_stores!(namespaces_hold_user_workers_that_no_route_reaches);

async fn namespaces_hold_user_workers_that_no_route_reaches(backend: Backend) {
  let control = ApiControl::start(backend).await;
  let key = tempfile::tempdir().expect("temp dir");
  control
    .app
    .set_secrets_key(SecretsKey::load_or_create(key.path()).expect("a secrets key"));
  let call = |method: Method, path: &str, body: Option<Value>| {
    let path = path.to_owned();
    let control = &control;
    async move { control.admin(method, &path, body).await }
  };
  let (status, created) = call(
    Method::POST,
    "/dispatch-namespaces",
    Some(json!({ "name": "customers" })),
  )
  .await;
  assert_eq!(status, 201, "{created}");
  assert_eq!(created["namespace"]["name"], "customers");
  let (status, again) = call(
    Method::POST,
    "/dispatch-namespaces",
    Some(json!({ "name": "customers" })),
  )
  .await;
  assert_eq!((status, &again["error"]["code"]), (409, &json!("conflict")));
  let (status, _) = call(
    Method::POST,
    "/dispatch-namespaces",
    Some(json!({ "name": "Bad/Name" })),
  )
  .await;
  assert_eq!(status, 400);

  let bundle = json!({
    "main": "worker.js",
    "modules": { "worker.js": "export default { fetch() { return new Response('alice'); } };" },
  });
  // A namespace that does not exist holds nothing.
  let (status, missing) = call(
    Method::POST,
    "/dispatch-namespaces/nobody/workers/alice/versions",
    Some(bundle.clone()),
  )
  .await;
  assert_eq!(status, 404, "{missing}");
  let alice = "/dispatch-namespaces/customers/workers/alice";
  let (status, uploaded) = call(Method::POST, &format!("{alice}/versions"), Some(bundle)).await;
  assert_eq!(status, 201, "{uploaded}");
  let (status, deployed) = call(
    Method::POST,
    &format!("{alice}/deployments"),
    Some(json!({ "version": 1 })),
  )
  .await;
  assert_eq!(status, 201, "{deployed}");
  // Edges get it under its namespaced name, which no public name can be.
  let (_, state) = call(Method::GET, "/state", None).await;
  let workers: Vec<&str> = state["workers"]
    .as_array()
    .expect("workers")
    .iter()
    .filter_map(|w| w["worker"].as_str())
    .collect();
  assert_eq!(workers, ["customers/alice"]);
  let (status, refused) = call(
    Method::PUT,
    "/routes",
    Some(json!({ "pattern": "alice.example.com/*", "worker": "customers/alice" })),
  )
  .await;
  assert_eq!(status, 400, "a route cannot name a user worker: {refused}");
  // Secrets work on it as on any worker.
  let (status, secret) = call(
    Method::PUT,
    &format!("{alice}/secrets/API_KEY"),
    Some(json!({ "value": "s3cret" })),
  )
  .await;
  assert_eq!(status, 201, "{secret}");

  let (_, listed) = call(Method::GET, "/dispatch-namespaces", None).await;
  assert_eq!(listed["namespaces"][0]["name"], "customers");
  assert_eq!(listed["namespaces"][0]["workers"], 1);
  let (_, shown) = call(Method::GET, "/dispatch-namespaces/customers", None).await;
  assert_eq!(
    shown["workers"],
    json!([{ "name": "alice", "newest_version": 2, "deployed": true }])
  );

  // Deleting the namespace stops serving its workers.
  let (status, deleted) = call(Method::DELETE, "/dispatch-namespaces/customers", None).await;
  assert_eq!(status, 200, "{deleted}");
  let (_, state) = call(Method::GET, "/state", None).await;
  assert_eq!(state["workers"], json!([]), "{state}");
  let (status, _) = call(Method::GET, "/dispatch-namespaces/customers", None).await;
  assert_eq!(status, 404);
  let (status, _) = call(Method::DELETE, "/dispatch-namespaces/customers", None).await;
  assert_eq!(status, 404);
}

/// Runs `outpost <args>` against `control` in `dir`; its status, stdout
/// and stderr.
fn run_outpost(control: &Control, dir: &Path, args: &[&str]) -> (bool, String, String) {
  let output = outpost()
    .args(args)
    .args(["--url", &control.api, "--token", &control.admin])
    .current_dir(dir)
    .output()
    .expect("outpost runs");
  (
    output.status.success(),
    String::from_utf8_lossy(&output.stdout).into_owned(),
    String::from_utf8_lossy(&output.stderr).into_owned(),
  )
}

/// `(status, body)` of `path` on the edge at `url` for Host `host`.
async fn get_as(client: &reqwest::Client, url: &str, host: &str, path: &str) -> (u16, String) {
  let response = client
    .get(format!("{url}{path}"))
    .header("host", host)
    .send()
    .await
    .expect("the edge answers");
  let status = response.status().as_u16();
  (status, response.text().await.expect("a body"))
}

/// Asks until `host` answers `path` with `want`, as the edge applies what
/// was deployed.
async fn until_status(client: &reqwest::Client, url: &str, host: &str, path: &str, want: u16) {
  let deadline = Instant::now() + Duration::from_secs(20);
  loop {
    let (status, body) = get_as(client, url, host, path).await;
    if status == want {
      return;
    }
    assert!(
      Instant::now() < deadline,
      "{host}{path} answers {status} ({body}), not {want}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
  }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispatcher_serves_user_workers_by_subdomain_under_their_limits() {
  let data = tempfile::tempdir().expect("temp dir");
  let (control, _edge, url) = control_and_edge(data.path());
  let customer = data.path().join("customer");
  copy_tree(&fixtures_dir().join("dispatch/customer"), &customer);
  let dispatcher = data.path().join("dispatcher");
  copy_tree(&fixtures_dir().join("dispatch/dispatcher"), &dispatcher);

  let (ok, out, err) = run_outpost(
    &control,
    data.path(),
    &["dispatch-namespace", "create", "customers"],
  );
  assert!(ok, "{out}{err}");
  // Uploading into it: the customer project's own route is ignored.
  for name in ["alice", "bob"] {
    let (ok, out, err) = run_outpost(
      &control,
      &customer,
      &[
        "deploy",
        "--name",
        name,
        "--dispatch-namespace",
        "customers",
      ],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("dispatch namespace customers"), "{out}");
    assert!(err.contains("routes ignored"), "{err}");
  }
  let (ok, out, err) = run_outpost(
    &control,
    data.path(),
    &["dispatch-namespace", "show", "customers"],
  );
  assert!(
    ok && out.contains("alice") && out.contains("bob"),
    "{out}{err}"
  );
  let (ok, out, err) = run_outpost(&control, data.path(), &["dispatch-namespace", "list"]);
  let listed = out.lines().find(|line| line.starts_with("customers"));
  assert!(
    ok && listed.is_some_and(|line| line.split_whitespace().eq(["customers", "2"])),
    "{out}{err}"
  );
  deploy_folder(&control, &dispatcher);

  let client = reqwest::Client::new();
  until_status(&client, &url, "alice.customers.test", "/", 200).await;
  let response = client
    .post(format!("{url}/hello"))
    .header("host", "alice.customers.test")
    .body("from the client")
    .send()
    .await
    .expect("the edge answers");
  assert_eq!(response.status(), 200);
  let echoed: Value =
    serde_json::from_slice(&response.bytes().await.expect("a body")).expect("JSON");
  assert_eq!(echoed["greeting"], "hello");
  assert_eq!(echoed["host"], "alice.customers.test");
  assert_eq!(echoed["method"], "POST");
  assert_eq!(echoed["body"], "from the client");
  assert!(
    echoed["ray"].as_str().is_some_and(|ray| !ray.is_empty()),
    "the dispatcher's ray reaches the user worker: {echoed}"
  );

  // `outpost tail` follows a user worker through its namespace.
  let tail = Tail::start_for(&control, "bob", &["--dispatch-namespace", "customers"]);
  let deadline = Instant::now() + Duration::from_secs(20);
  loop {
    let (status, _) = get_as(&client, &url, "bob.customers.test", "/tailed").await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = tail.events();
    if events
      .iter()
      .any(|e| e["type"] == "request" && e["url"].as_str().is_some_and(|u| u.ends_with("/tailed")))
    {
      break;
    }
    assert!(
      Instant::now() < deadline,
      "the tail never showed bob's request: {events:#?}"
    );
  }
  drop(tail);

  // RPC reaches a user worker's entrypoint methods the same way.
  let (status, body) = get_as(&client, &url, "bob.customers.test", "/rpc").await;
  assert_eq!((status, body.as_str()), (200, "hello, the platform"));
  let (_, body) = get_as(&client, &url, "carol.customers.test", "/rpc").await;
  assert_eq!(body, "no customer carol\n");

  // A name the namespace does not hold: the dispatcher tells it apart.
  let (status, body) = get_as(&client, &url, "carol.customers.test", "/").await;
  assert_eq!((status, body.as_str()), (404, "no customer carol\n"));
  // User workers are not public: not by name, not by path.
  for (host, path) in [
    ("alice.localhost", "/"),
    ("edge.test", "/alice/"),
    ("edge.test", "/customers/alice/"),
    ("customer.example.com", "/"),
  ] {
    let (status, body) = get_as(&client, &url, host, path).await;
    assert_eq!(status, 404, "{host}{path}: {body}");
  }

  // Alice's calls run under 50 ms of CPU: a longer one is stopped and the
  // dispatcher catches it; bob, with no limit of the dispatcher's, runs
  // under his own 1,000 ms.
  let (status, body) = get_as(&client, &url, "alice.customers.test", "/spin?ms=400").await;
  assert_eq!(status, 500, "{body}");
  assert!(
    body.starts_with("customer alice failed: Worker \"alice\" exceeded its CPU time limit"),
    "{body}"
  );
  let (status, body) = get_as(&client, &url, "bob.customers.test", "/spin?ms=400").await;
  assert_eq!((status, body.as_str()), (200, "spun\n"));
  // Alice stopped is alice restarted: short calls still pass.
  let (status, body) = get_as(&client, &url, "alice.customers.test", "/spin?ms=1").await;
  assert_eq!((status, body.as_str()), (200, "spun\n"));

  // Alice may make two subrequests a call; bob his own 50.
  let (status, body) = get_as(&client, &url, "alice.customers.test", "/fetch").await;
  assert_eq!(status, 200, "{body}");
  let results: Vec<String> = serde_json::from_str(&body).expect("JSON");
  assert!(
    !results[0].contains("Too many") && !results[1].contains("Too many"),
    "{results:?}"
  );
  assert!(
    results[2].starts_with("Too many subrequests"),
    "{results:?}"
  );
  let (_, body) = get_as(&client, &url, "bob.customers.test", "/fetch").await;
  assert!(!body.contains("Too many"), "{body}");

  // Deleting the namespace takes its workers off every edge.
  let (ok, out, err) = run_outpost(
    &control,
    data.path(),
    &["dispatch-namespace", "delete", "customers"],
  );
  assert!(ok, "{out}{err}");
  until_status(&client, &url, "alice.customers.test", "/", 404).await;
  let (ok, _, err) = run_outpost(
    &control,
    &customer,
    &[
      "deploy",
      "--name",
      "dave",
      "--dispatch-namespace",
      "customers",
    ],
  );
  assert!(!ok && err.contains("no dispatch namespace"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn outpost_dev_runs_a_dispatcher_with_user_workers_beside_it() {
  let dispatch = fixtures_dir().join("dispatch");
  let dev = DevProcess::start(
    &dispatch,
    &["dispatcher", "--user-worker", "customers=customer"],
  )
  .await;
  let client = reqwest::Client::new();
  let url = dev.url.trim_end_matches('/');
  let (status, body) = get_as(&client, url, "customer.customers.test", "/x").await;
  assert_eq!(status, 200, "{body}");
  let echoed: Value = serde_json::from_str(&body).expect("JSON");
  assert_eq!(echoed["host"], "customer.customers.test");
  let (_, body) = get_as(&client, url, "customer.customers.test", "/rpc").await;
  assert_eq!(body, "hello, the platform");
  let (status, body) = get_as(&client, url, "nobody.customers.test", "/").await;
  assert_eq!((status, body.as_str()), (404, "no customer nobody\n"));

  // Without user workers, the dev server says why every get() finds none.
  let bare = DevProcess::start(&dispatch, &["dispatcher"]).await;
  let stderr = bare
    .wait_for_stderr("--user-worker customers=", Duration::from_secs(5))
    .await;
  assert!(stderr.contains("no user workers here"), "{stderr}");
  // An outbound worker is declared, warned about, and the project runs.
  assert!(
    stderr.contains("dispatch_namespaces.outbound` is not supported"),
    "{stderr}"
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_of_many_user_workers_answers_for_its_own_subdomain() {
  const USERS: usize = 40;
  let data = tempfile::tempdir().expect("temp dir");
  let (control, _edge, url) = control_and_edge(data.path());
  let (status, body) = control
    .call(
      Method::POST,
      "/dispatch-namespaces",
      Some(json!({ "name": "customers" })),
    )
    .await;
  assert_eq!(status, 201, "{body}");
  for i in 0..USERS {
    let path = format!("/dispatch-namespaces/customers/workers/u{i}");
    let source = format!("export default {{ fetch() {{ return new Response('u{i}'); }} }};");
    let bundle = json!({ "main": "worker.js", "modules": { "worker.js": source } });
    let (status, body) = control
      .call(Method::POST, &format!("{path}/versions"), Some(bundle))
      .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = control
      .call(
        Method::POST,
        &format!("{path}/deployments"),
        Some(json!({ "version": 1 })),
      )
      .await;
    assert_eq!(status, 201, "{body}");
  }
  let dispatcher = data.path().join("dispatcher");
  copy_tree(&fixtures_dir().join("dispatch/dispatcher"), &dispatcher);
  deploy_folder(&control, &dispatcher);
  let client = reqwest::Client::new();
  let last = format!("u{}.customers.test", USERS - 1);
  until_status(&client, &url, &last, "/", 200).await;
  // Twice round, so each user worker answers from its running isolate too.
  for round in 0..2 {
    for i in (0..USERS).rev() {
      let (status, body) = get_as(&client, &url, &format!("u{i}.customers.test"), "/").await;
      assert_eq!(
        (status, body.as_str()),
        (200, format!("u{i}").as_str()),
        "round {round}"
      );
    }
  }
}
