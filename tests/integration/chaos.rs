//! Chaos under steady load: the control plane SIGKILLed, then one of two
//! edges SIGKILLed, then the control plane back and a new version deployed,
//! all while clients keep requesting from both edges. The surviving edge
//! must fail no request, and no response may come from a half-applied
//! version: the worker is two modules, and each answer names both.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::cluster::{Control, Storage, wait_for};
use crate::util::Backend;

/// A version of `app` in two modules; it answers `<a>/<b>`.
fn two_module_bundle(version: &str) -> serde_json::Value {
  json!({
    "main": "index.js",
    "modules": {
      "index.js": "import { A } from './a.js';\nimport { B } from './b.js';\nexport default { fetch() { return new Response(`${A}/${B}`); } };",
      "a.js": format!("export const A = {version:?};"),
      "b.js": format!("export const B = {version:?};"),
    },
  })
}

/// Uploads [`two_module_bundle`] of `version` as a new version of `app`.
async fn upload_two_modules(control: &Control, version: &str) {
  let (status, body) = control
    .call(
      reqwest::Method::POST,
      "/workers/app/versions",
      Some(two_module_bundle(version)),
    )
    .await;
  assert!(status == 201 || status == 200, "{body}");
}

/// What one edge's clients saw.
#[derive(Debug, Default)]
struct Tally {
  v1: u64,
  v2: u64,
  /// Connection errors and non-200 answers.
  failed: u64,
  /// 200s with any other body: a half-applied version.
  other: Vec<String>,
  /// Why the first few failed, for the assertion's message.
  why: Vec<String>,
}

/// `clients` loops requesting `url` until `stop` is raised.
async fn load(url: String, clients: usize, stop: Arc<AtomicBool>) -> Tally {
  let mut tasks = tokio::task::JoinSet::new();
  for _ in 0..clients {
    let (url, stop) = (url.clone(), stop.clone());
    tasks.spawn(async move {
      let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
      let mut tally = Tally::default();
      while !stop.load(Ordering::Relaxed) {
        let answer = match client.get(&url).send().await {
          Ok(response) if response.status() == 200 => response.text().await.ok(),
          Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            tally.note(format!("{status}: {body}"));
            None
          }
          Err(err) => {
            tally.note(format!("{err:?}"));
            None
          }
        };
        match answer.as_deref() {
          Some("v1/v1") => tally.v1 += 1,
          Some("v2/v2") => tally.v2 += 1,
          Some(other) => tally.other.push(other.to_owned()),
          None => {
            tally.failed += 1;
            // A dead edge refuses at once: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
          }
        }
      }
      tally
    });
  }
  let mut total = Tally::default();
  while let Some(tally) = tasks.join_next().await {
    let tally = tally.expect("a load task");
    total.v1 += tally.v1;
    total.v2 += tally.v2;
    total.failed += tally.failed;
    total.other.extend(tally.other);
    total.why.extend(tally.why);
  }
  total
}

impl Tally {
  fn note(&mut self, why: String) {
    if self.why.len() < 5 {
      self.why.push(why);
    }
  }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_surviving_edge_fails_no_request_through_kills_and_a_deployment() {
  let data = tempfile::tempdir().expect("temp dir");
  let storage = Storage::new(Backend::Sqlite, &data.path().join("control")).await;
  let control = Control::start_with(&storage, 0, 0, None);
  let mut edges = control.start_edges(&storage, data.path(), 2);
  upload_two_modules(&control, "v1").await;
  control.deploy("app", Some(json!({ "version": 1 }))).await;
  let urls: Vec<String> = edges.iter().map(|(_, url)| format!("{url}/app/")).collect();
  for url in &urls {
    wait_for(url, "v1/v1").await;
  }

  let stop = Arc::new(AtomicBool::new(false));
  let survivor = tokio::spawn(load(urls[0].clone(), 4, stop.clone()));
  let victim = tokio::spawn(load(urls[1].clone(), 2, stop.clone()));
  tokio::time::sleep(Duration::from_secs(1)).await;

  // The control plane dies; both edges serve on.
  let (api_port, sync_port, admin) = (control.api_port, control.sync_port, control.admin.clone());
  drop(control); // SIGKILL
  tokio::time::sleep(Duration::from_secs(2)).await;

  // One edge dies.
  drop(edges.pop()); // SIGKILL
  tokio::time::sleep(Duration::from_secs(1)).await;

  // The control plane comes back, and a new version goes out under load.
  let control = Control::start_with(&storage, api_port, sync_port, Some(&admin));
  upload_two_modules(&control, "v2").await;
  control.deploy("app", Some(json!({ "version": 2 }))).await;
  wait_for(&urls[0], "v2/v2").await;
  tokio::time::sleep(Duration::from_secs(1)).await;
  stop.store(true, Ordering::Relaxed);

  let survivor = survivor.await.expect("survivor load");
  let victim = victim.await.expect("victim load");
  eprintln!("chaos: surviving edge {survivor:?}; killed edge {victim:?}");
  assert_eq!(survivor.failed, 0, "the surviving edge failed requests");
  assert!(
    survivor.other.is_empty() && victim.other.is_empty(),
    "answers from a half-applied version: {:?} {:?}",
    survivor.other,
    victim.other
  );
  assert!(survivor.v1 > 0 && survivor.v2 > 0, "{survivor:?}");
  assert!(
    victim.failed > 0,
    "the killed edge kept answering: {victim:?}"
  );
}
