//! An edge's disk cache damaged between two runs: a truncated bundle, an
//! altered module file, a flipped asset byte, a truncated asset, a
//! truncated `state.json`. The restarted edge refuses each damaged entry,
//! fetches it again from the control plane, and serves everything else
//! from disk meanwhile.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::{Control, body_of, start_edge, wait_for};
use crate::npm_projects::{control_and_edge, deploy_folder};

/// A project with static assets, deployed as `pages`.
fn pages_project(root: &Path) {
  std::fs::create_dir_all(root.join("public")).expect("folders");
  std::fs::write(
    root.join("worker.js"),
    "export default { fetch() { return new Response('pages worker'); } };",
  )
  .expect("worker");
  std::fs::write(
    root.join("wrangler.toml"),
    "name = \"pages\"\nmain = \"worker.js\"\n\n[assets]\ndirectory = \"public\"\n",
  )
  .expect("wrangler.toml");
  std::fs::write(root.join("public/hello.txt"), "hello from disk").expect("asset");
  std::fs::write(root.join("public/big.txt"), "0123456789".repeat(500)).expect("asset");
}

/// GET `path` on the `pages` site: status and body.
async fn pages(url: &str, path: &str) -> (u16, String) {
  let response = reqwest::Client::new()
    .get(format!("{url}{path}"))
    .header("host", "pages.localhost")
    .send()
    .await
    .expect("an answer");
  let status = response.status().as_u16();
  (status, response.text().await.unwrap_or_default())
}

async fn wait_for_pages(url: &str, path: &str, want: &str) {
  let deadline = Instant::now() + Duration::from_secs(20);
  loop {
    let (status, body) = pages(url, path).await;
    if status == 200 && body == want {
      return;
    }
    assert!(Instant::now() < deadline, "{path}: {status} {body:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
  }
}

/// The hash of `worker`'s first version in the edge's saved state.
fn bundle_hash(edge_data: &Path, worker: &str) -> String {
  let state: Value =
    serde_json::from_slice(&std::fs::read(edge_data.join("state.json")).expect("state.json"))
      .expect("JSON");
  state["workers"]
    .as_array()
    .expect("workers")
    .iter()
    .find(|w| w["worker"] == worker)
    .and_then(|w| w["versions"][0]["hash"].as_str())
    .unwrap_or_else(|| panic!("{worker} is not in the saved state"))
    .to_owned()
}

fn sha256_hex(bytes: &[u8]) -> String {
  outpost_protocol::bundle::sha256_hex(bytes)
}

fn truncate_half(path: &PathBuf) {
  let bytes = std::fs::read(path).expect("read");
  std::fs::write(path, &bytes[..bytes.len() / 2]).expect("truncate");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_disk_cache_is_refused_refetched_and_the_rest_served() {
  let data = tempfile::tempdir().expect("temp dir");
  let (control, edge, url) = control_and_edge(data.path());
  for name in ["alpha", "beta", "gamma"] {
    control.upload(name, &format!("{name} v1")).await;
    control.deploy(name, Some(json!({ "version": 1 }))).await;
  }
  let project = data.path().join("pages");
  pages_project(&project);
  deploy_folder(&control, &project);
  for name in ["alpha", "beta", "gamma"] {
    wait_for(&format!("{url}/{name}/"), &format!("{name} v1")).await;
  }
  wait_for_pages(&url, "/hello.txt", "hello from disk").await;
  drop(edge); // SIGKILL

  let edge_data = data.path().join("edge");
  let bundles = edge_data.join("bundles");
  truncate_half(
    &bundles
      .join(bundle_hash(&edge_data, "alpha"))
      .join("bundle.json"),
  );
  std::fs::write(
    bundles
      .join(bundle_hash(&edge_data, "beta"))
      .join("modules/worker.js"),
    "export default { fetch() { return new Response('tampered'); } };",
  )
  .expect("tamper");
  let assets = edge_data.join("assets");
  let hello = assets.join(sha256_hex(b"hello from disk"));
  std::fs::write(&hello, "HELLO from disk").expect("flip"); // same size
  let big = "0123456789".repeat(500);
  truncate_half(&assets.join(sha256_hex(big.as_bytes())));

  // Restarted with the control plane up: what is sound serves at once,
  // the rest comes back fetched, never as the damaged copy.
  let (edge, url) = start_edge(&control.api, None, &edge_data);
  assert_eq!(
    body_of(&format!("{url}/gamma/")).await.as_deref(),
    Some("gamma v1")
  );
  wait_for(&format!("{url}/alpha/"), "alpha v1").await;
  wait_for(&format!("{url}/beta/"), "beta v1").await;
  wait_for_pages(&url, "/hello.txt", "hello from disk").await;
  wait_for_pages(&url, "/big.txt", &big).await;
  let module = bundles
    .join(bundle_hash(&edge_data, "beta"))
    .join("modules/worker.js");
  assert!(
    std::fs::read_to_string(module)
      .expect("refetched")
      .contains("beta v1")
  );
  drop(edge);

  // A truncated state.json, and no control plane: the edge still starts
  // (serving nothing) and catches up once the control plane is back.
  let (api_port, sync_port, admin) = (control.api_port, control.sync_port, control.admin.clone());
  let control_data = data.path().join("control");
  drop(control);
  truncate_half(&edge_data.join("state.json"));
  let api = format!("http://127.0.0.1:{api_port}/v1");
  let (_edge, url) = start_edge(&api, None, &edge_data);
  assert_eq!(body_of(&format!("{url}/gamma/")).await, None);
  let _control = Control::start(&control_data, api_port, sync_port, Some(&admin));
  for name in ["alpha", "beta", "gamma"] {
    wait_for(&format!("{url}/{name}/"), &format!("{name} v1")).await;
  }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retired_versions_bundle_and_assets_leave_the_disk_and_come_back_on_rollback() {
  let data = tempfile::tempdir().expect("temp dir");
  let (control, _edge, url) = control_and_edge(data.path());
  let project = data.path().join("pages");
  pages_project(&project);
  deploy_folder(&control, &project);
  wait_for_pages(&url, "/hello.txt", "hello from disk").await;
  let edge_data = data.path().join("edge");
  let first = bundle_hash(&edge_data, "pages");
  let old_hello = sha256_hex(b"hello from disk");
  let big = sha256_hex("0123456789".repeat(500).as_bytes());
  let assets = edge_data.join("assets");
  assert!(edge_data.join("bundles").join(&first).is_dir());
  assert!(assets.join(&old_hello).is_file() && assets.join(&big).is_file());

  // A second version: new code and a changed hello.txt; big.txt is shared.
  std::fs::write(
    project.join("worker.js"),
    "export default { fetch() { return new Response('pages worker v2'); } };",
  )
  .expect("worker");
  std::fs::write(project.join("public/hello.txt"), "hello again").expect("asset");
  deploy_folder(&control, &project);
  wait_for_pages(&url, "/hello.txt", "hello again").await;
  let second = bundle_hash(&edge_data, "pages");
  assert_ne!(first, second);
  assert!(
    !edge_data.join("bundles").join(&first).exists(),
    "the retired version's bundle is still on disk"
  );
  assert!(
    !assets.join(&old_hello).exists(),
    "its own asset is still on disk"
  );
  assert!(
    assets.join(&big).is_file(),
    "an asset both versions use went"
  );
  assert!(edge_data.join("bundles").join(&second).is_dir());

  // A rollback fetches them again.
  control.deploy("pages", None).await;
  wait_for_pages(&url, "/hello.txt", "hello from disk").await;
  assert!(edge_data.join("bundles").join(&first).is_dir());
  assert!(!edge_data.join("bundles").join(&second).exists());
}
