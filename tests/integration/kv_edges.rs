//! KV across a cluster of real processes: one control plane, two edges,
//! the `kv` fixture deployed with a namespace bound. Writes through one
//! edge reach the other without waiting out its cache; namespaces stay
//! apart; with the control plane down, cached keys read on, uncached keys
//! and writes fail clearly, and nothing is lost.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::cluster::{Control, Process, Storage, start_edge_lines, start_edge_with};
use crate::util::{Backend, fixture_entry, metric};

on_both_stores!(writes_through_one_edge_reach_the_other);

/// A worker request to `edge` with Host `host`: status and body.
async fn call(edge: &str, host: &str, method: Method, path: &str, body: &str) -> (u16, String) {
  let response = reqwest::Client::new()
    .request(method, format!("{edge}{path}"))
    .header("host", host)
    .body(body.to_owned())
    .send()
    .await
    .expect("the edge answers");
  let status = response.status().as_u16();
  (status, response.text().await.expect("text"))
}

async fn get(edge: &str, host: &str, path: &str) -> (u16, String) {
  call(edge, host, Method::GET, path, "").await
}

/// Waits up to `within` for `path` on `edge` to answer `want`.
async fn wait_for_answer(edge: &str, host: &str, path: &str, want: (u16, &str), within: Duration) {
  let deadline = Instant::now() + within;
  loop {
    let got = get(edge, host, path).await;
    if (got.0, got.1.as_str()) == want {
      return;
    }
    assert!(
      Instant::now() < deadline,
      "{path} on {edge} answers {got:?}, not {want:?}, after {within:?}"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
  }
}

/// Creates a namespace and returns its id.
async fn namespace(control: &Control, title: &str) -> String {
  let (status, body) = control
    .call(
      Method::POST,
      "/kv/namespaces",
      Some(json!({ "title": title })),
    )
    .await;
  assert_eq!(status, 201, "{body}");
  body["namespace"]["id"].as_str().expect("id").to_owned()
}

/// Deploys the `kv` fixture as `worker` with `KV` bound to `ns`, routed
/// from `<worker>.test/*`; returns the epoch.
async fn deploy_kv_worker(control: &Control, worker: &str, ns: &str) -> u64 {
  let source = std::fs::read_to_string(fixture_entry("kv")).expect("the kv fixture");
  let bundle = json!({
    "main": "worker.js",
    "modules": { "worker.js": source },
    "kv_namespaces": [{ "binding": "KV", "id": ns }],
  });
  let (status, body) = control
    .call(
      Method::POST,
      &format!("/workers/{worker}/versions"),
      Some(bundle),
    )
    .await;
  assert_eq!(status, 201, "{body}");
  let pattern = format!("{worker}.test/*");
  let (status, body) = control
    .call(
      Method::PUT,
      "/routes",
      Some(json!({ "pattern": pattern, "worker": worker })),
    )
    .await;
  assert_eq!(status, 200, "{body}");
  control.deploy(worker, Some(json!({ "version": 1 }))).await
}

/// A control plane on `storage` and `count` edges with `extra` flags.
async fn cluster(
  storage: &Storage,
  dir: &Path,
  count: usize,
  extra: &[&str],
) -> (Control, Vec<(Process, String)>) {
  let control = Control::start_with(storage, 0, 0, None);
  let edges = (0..count)
    .map(|n| {
      let join = storage.token("edge-join");
      start_edge_with(
        &control.api,
        Some(&join),
        &dir.join(format!("edge{n}")),
        extra,
      )
    })
    .collect();
  (control, edges)
}

async fn writes_through_one_edge_reach_the_other(backend: Backend) {
  let dir = tempfile::tempdir().expect("temp dir");
  let storage = Storage::new(backend, &dir.path().join("control")).await;
  let (control, edges) = cluster(&storage, dir.path(), 2, &[]).await;
  let (a, b) = (&edges[0].1, &edges[1].1);
  let ns = namespace(&control, "shared").await;
  let other_ns = namespace(&control, "other").await;
  deploy_kv_worker(&control, "app", &ns).await;
  let epoch = deploy_kv_worker(&control, "other", &other_ns).await;
  control.wait_for_acks(epoch).await;

  // B learns the key does not exist, and caches that for a minute.
  assert_eq!(get(b, "app.test", "/v/greeting").await.0, 404);
  assert_eq!(
    get(b, "app.test", "/m/greeting").await.1,
    r#"{"value":null,"metadata":null,"cacheStatus":null}"#
  );

  // A writes: it reads its own write at once, from its cache.
  let (status, body) = call(a, "app.test", Method::PUT, "/v/greeting", "hello").await;
  assert_eq!((status, body.as_str()), (200, "stored"));
  let read: Value = serde_json::from_str(&get(a, "app.test", "/m/greeting").await.1).expect("JSON");
  assert_eq!(read["value"], "hello");
  assert_eq!(
    read["cacheStatus"], "HIT",
    "read-your-writes from the cache"
  );

  // B drops its negative entry when the control plane says so.
  wait_for_answer(
    b,
    "app.test",
    "/v/greeting",
    (200, "hello"),
    Duration::from_secs(2),
  )
  .await;
  // A second read on B is a cache hit.
  let read: Value = serde_json::from_str(&get(b, "app.test", "/m/greeting").await.1).expect("JSON");
  assert_eq!(read["cacheStatus"], "HIT");

  // An overwrite and a delete through B reach A the same way.
  call(b, "app.test", Method::PUT, "/v/greeting", "hello again").await;
  wait_for_answer(
    a,
    "app.test",
    "/v/greeting",
    (200, "hello again"),
    Duration::from_secs(2),
  )
  .await;
  let (status, _) = call(b, "app.test", Method::DELETE, "/v/greeting", "").await;
  assert_eq!(status, 200);
  wait_for_answer(
    a,
    "app.test",
    "/v/greeting",
    (404, "null"),
    Duration::from_secs(2),
  )
  .await;

  // Another worker's namespace is another world, under the same binding name.
  call(a, "other.test", Method::PUT, "/v/greeting", "theirs").await;
  assert_eq!(
    get(a, "other.test", "/v/greeting").await,
    (200, "theirs".to_owned())
  );
  assert_eq!(get(b, "app.test", "/v/greeting").await.0, 404);
  assert_eq!(get(a, "app.test", "/v/greeting").await.0, 404);
  // Nor can a worker reach a namespace it is not bound to by its id.
  let (status, body) = get(a, "app.test", &format!("/forge/{other_ns}")).await;
  assert_eq!(status, 200, "{body}");
  let forged: Value = serde_json::from_str(&body).expect("JSON");
  assert_eq!(forged["reached"], false, "{forged}");
  assert_eq!(forged["class"], "TypeError");
  assert!(
    forged["message"]
      .as_str()
      .expect("message")
      .contains("is not bound to this worker"),
    "{forged}"
  );

  // A write through the API reaches the edges too.
  let (status, _) = reqwest::Client::new()
    .put(format!(
      "{}/kv/namespaces/{ns}/values/from-api",
      control.api
    ))
    .bearer_auth(&control.admin)
    .body("via API")
    .send()
    .await
    .map(|r| (r.status().as_u16(), ()))
    .expect("the API answers");
  assert_eq!(status, 200);
  for edge in [a, b] {
    wait_for_answer(
      edge,
      "app.test",
      "/v/from-api",
      (200, "via API"),
      Duration::from_secs(2),
    )
    .await;
  }
}

#[tokio::test]
async fn with_the_control_plane_down_cached_keys_read_and_the_rest_fail_clearly() {
  let dir = tempfile::tempdir().expect("temp dir");
  let storage = Storage::new(Backend::Sqlite, &dir.path().join("control")).await;
  let (control, edges) = cluster(&storage, dir.path(), 1, &["--kv-timeout-ms", "1000"]).await;
  let edge = &edges[0].1;
  let (api_port, sync_port, admin) = (control.api_port, control.sync_port, control.admin.clone());
  let ns = namespace(&control, "data").await;
  let epoch = deploy_kv_worker(&control, "app", &ns).await;
  control.wait_for_acks(epoch).await;
  call(edge, "app.test", Method::PUT, "/v/kept", "cached value").await;
  call(edge, "app.test", Method::PUT, "/v/uncached", "stored only").await;
  // Dropped from the edge's cache by the API's write, never read since.
  let put = |key: &str, value: &str| {
    reqwest::Client::new()
      .put(format!("{}/kv/namespaces/{ns}/values/{key}", control.api))
      .bearer_auth(&admin)
      .body(value.to_owned())
      .send()
  };
  assert!(
    put("uncached", "stored only, v2")
      .await
      .expect("answer")
      .status()
      .is_success()
  );
  tokio::time::sleep(Duration::from_millis(300)).await;

  drop(control); // SIGKILL

  assert_eq!(
    get(edge, "app.test", "/v/kept").await,
    (200, "cached value".to_owned()),
    "a cached key reads on"
  );
  let (status, body) = get(edge, "app.test", "/v/uncached").await;
  assert_eq!(status, 500, "{body}");
  let error: Value = serde_json::from_str(&body).expect("JSON");
  assert_eq!(error["error"], "Error");
  assert!(
    error["message"]
      .as_str()
      .expect("message")
      .starts_with("KV is unavailable"),
    "{error}"
  );
  let (status, body) = call(edge, "app.test", Method::PUT, "/v/kept", "lost?").await;
  assert_eq!(status, 500, "a put fails loudly: {body}");
  assert!(body.contains("KV is unavailable"), "{body}");
  assert_eq!(
    get(edge, "app.test", "/v/kept").await,
    (200, "cached value".to_owned()),
    "a failed put changes nothing"
  );

  // Back up: the store has every value that was acknowledged, and no other.
  let control = Control::start_with(&storage, api_port, sync_port, Some(&admin));
  let read = |key: &'static str| {
    reqwest::Client::new()
      .get(format!("{}/kv/namespaces/{ns}/values/{key}", control.api))
      .bearer_auth(&admin)
      .send()
  };
  let kept = read("kept")
    .await
    .expect("answer")
    .text()
    .await
    .expect("text");
  assert_eq!(kept, "cached value");
  let uncached = read("uncached")
    .await
    .expect("answer")
    .text()
    .await
    .expect("text");
  assert_eq!(uncached, "stored only, v2");
  // The edge reconnects and reads through again.
  wait_for_answer(
    edge,
    "app.test",
    "/v/uncached",
    (200, "stored only, v2"),
    Duration::from_secs(20),
  )
  .await;
}

#[tokio::test]
async fn two_replicas_on_postgres_carry_invalidations_between_their_edges() {
  let dir = tempfile::tempdir().expect("temp dir");
  let storage = Storage::new(Backend::Postgres, dir.path()).await;
  let a = Control::start_with(&storage, 0, 0, None);
  let b = Control::start_with(&storage, 0, 0, Some(&a.admin));
  // Edge X follows replica A, edge Y replica B.
  let (_x, x) = start_edge_with(
    &a.api,
    Some(&storage.token("edge-join")),
    &dir.path().join("x"),
    &[],
  );
  let (_y, y) = start_edge_with(
    &b.api,
    Some(&storage.token("edge-join")),
    &dir.path().join("y"),
    &[],
  );
  let ns = namespace(&a, "replicated").await;
  let epoch = deploy_kv_worker(&a, "app", &ns).await;
  a.wait_for_acks(epoch).await;

  assert_eq!(get(&y, "app.test", "/v/k").await.0, 404, "Y caches a miss");
  call(&x, "app.test", Method::PUT, "/v/k", "through A").await;
  wait_for_answer(
    &y,
    "app.test",
    "/v/k",
    (200, "through A"),
    Duration::from_secs(2),
  )
  .await;
  call(&y, "app.test", Method::PUT, "/v/k", "through B").await;
  wait_for_answer(
    &x,
    "app.test",
    "/v/k",
    (200, "through B"),
    Duration::from_secs(2),
  )
  .await;
}

#[tokio::test]
async fn metrics_count_kv_hits_and_misses_and_the_sync_state() {
  let dir = tempfile::tempdir().expect("temp dir");
  let storage = Storage::new(Backend::Sqlite, &dir.path().join("control")).await;
  let control = Control::start_with(&storage, 0, 0, None);
  let (_edge, lines) = start_edge_lines(
    &control.api,
    Some(&storage.token("edge-join")),
    &dir.path().join("edge"),
    &["--admin-port", "0"],
  );
  let metrics = lines
    .iter()
    .find(|l| l.contains("metrics on"))
    .and_then(|l| l.split_whitespace().last())
    .expect("the metrics address")
    .to_owned();
  let edge = lines
    .last()
    .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
    .expect("the edge's address")
    .trim_end_matches('/')
    .to_owned();
  let ns = namespace(&control, "counted").await;
  let epoch = deploy_kv_worker(&control, "app", &ns).await;
  control.wait_for_acks(epoch).await;

  assert_eq!(get(&edge, "app.test", "/v/a").await.0, 404, "a miss");
  for _ in 0..3 {
    assert_eq!(get(&edge, "app.test", "/v/a").await.0, 404, "a cached miss");
  }
  let text = reqwest::get(&metrics)
    .await
    .expect("scrape")
    .text()
    .await
    .expect("text");
  let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
    let labels: Vec<(&str, &str)> = label.into_iter().collect();
    metric(&text, name, &labels).unwrap_or_else(|| panic!("no {name} in\n{text}"))
  };
  assert_eq!(
    value("outpost_kv_cache_total", Some(("result", "miss"))),
    1.0
  );
  assert_eq!(
    value("outpost_kv_cache_total", Some(("result", "hit"))),
    3.0
  );
  assert_eq!(value("outpost_sync_connected", None), 1.0);
  assert_eq!(value("outpost_sync_epoch", None), epoch as f64);
  assert_eq!(value("outpost_sync_lag_epochs", None), 0.0);
  assert_eq!(value("outpost_kv_fetches_total", None), 1.0);

  // Twenty reads of one uncached key at once: one read from the control
  // plane, whether the others wait for it (misses that share it) or come
  // after it (hits).
  let before = value("outpost_kv_cache_total", Some(("result", "hit")));
  let same: Vec<&str> = vec!["fresh"; 20];
  let response = reqwest::Client::new()
    .post(format!("{edge}/bulk"))
    .header("host", "app.test")
    .body(serde_json::to_vec(&same).expect("JSON"))
    .send()
    .await
    .expect("the edge answers");
  assert_eq!(response.status(), 200);
  let text = reqwest::get(&metrics)
    .await
    .expect("scrape")
    .text()
    .await
    .expect("text");
  let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
    let labels: Vec<(&str, &str)> = label.into_iter().collect();
    metric(&text, name, &labels).unwrap_or_else(|| panic!("no {name} in\n{text}"))
  };
  let misses = value("outpost_kv_cache_total", Some(("result", "miss"))) - 1.0;
  let hits = value("outpost_kv_cache_total", Some(("result", "hit"))) - before;
  assert_eq!(misses + hits, 20.0);
  assert!(misses >= 1.0);
  assert_eq!(
    value("outpost_kv_fetches_total", None),
    2.0,
    "one fetch for all"
  );
}
