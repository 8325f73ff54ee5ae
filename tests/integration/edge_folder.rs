//! `outpost edge --local`: a folder of workers, routed by Host or path,
//! isolated from each other, and followed as folders change.

use std::time::Duration;

use serde_json::Value;

use crate::util::{
  TestServer, copy_fixture, count_in_logs, expected, get_text, http1, wait_for_body, wait_for_log,
};

async fn start() -> (tempfile::TempDir, TestServer, Value) {
  let dir = copy_fixture("edge-folder");
  let server = TestServer::folder(dir.path()).await;
  (dir, server, expected("edge-folder"))
}

fn strings(value: &Value) -> Vec<&str> {
  value
    .as_array()
    .expect("array")
    .iter()
    .map(|v| v.as_str().expect("string"))
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_by_host_then_path_and_refuses_the_rest() {
  let (_dir, server, exp) = start().await;
  let client = http1();

  let by_host = &exp["by_host"];
  let response = client
    .get(server.url(by_host["path"].as_str().expect("path")))
    .header(
      "host",
      format!(
        "{}:{}",
        by_host["host"].as_str().expect("host"),
        server.addr.port()
      ),
    )
    .send()
    .await
    .expect("request");
  assert_eq!(
    response.text().await.expect("body"),
    strings(&by_host["body"])[0]
  );

  let by_path = &exp["by_path"];
  let body = get_text(
    &client,
    &server.url(by_path["path"].as_str().expect("path")),
  )
  .await;
  assert_eq!(body, strings(&by_path["body"])[0]);

  let unknown = &exp["unknown"];
  let response = client
    .get(server.url(unknown["path"].as_str().expect("path")))
    .send()
    .await
    .expect("request");
  assert_eq!(
    response.status().as_u16(),
    unknown["status"].as_u64().expect("status") as u16
  );
  let body = response.text().await.expect("body");
  assert!(
    body.contains(unknown["body_contains"].as_str().expect("text")),
    "{body}"
  );

  let refused = exp["refused_folder"].as_str().expect("name");
  assert!(
    wait_for_log(
      &format!("\"{refused}\" is not a valid worker name"),
      Duration::from_secs(5)
    )
    .await
  );
  let response = client
    .get(server.url(&format!("/{refused}/")))
    .send()
    .await
    .expect("request");
  assert_eq!(response.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_never_see_each_others_globals() {
  let (_dir, server, exp) = start().await;
  let client = http1();
  let alpha_url = server.url(&format!(
    "/alpha{}",
    exp["by_host"]["path"].as_str().expect("path")
  ));
  let beta_url = server.url(exp["by_path"]["path"].as_str().expect("path"));
  let alpha_bodies = strings(&exp["by_host"]["body"]);
  let beta_bodies = strings(&exp["by_path"]["body"]);
  // Alternate, so each worker's write lands between the other's reads.
  for round in 0..5 {
    let alpha = client
      .get(&alpha_url)
      .send()
      .await
      .expect("alpha")
      .text()
      .await
      .expect("body");
    let beta = client
      .get(&beta_url)
      .send()
      .await
      .expect("beta")
      .text()
      .await
      .expect("body");
    let want = usize::from(round > 0);
    assert_eq!(alpha, alpha_bodies[want], "round {round}");
    assert_eq!(beta, beta_bodies[want], "round {round}");
  }
}

#[tokio::test(flavor = "multi_thread")]
async fn added_edited_and_removed_folders_take_effect_without_a_restart() {
  let (dir, server, exp) = start().await;
  let client = http1();
  let added = &exp["added"];
  let name = added["name"].as_str().expect("name");
  let url = server.url(&format!("/{name}/"));
  assert_eq!(
    client.get(&url).send().await.expect("request").status(),
    404
  );

  let folder = dir.path().join(name);
  std::fs::create_dir(&folder).expect("add folder");
  std::fs::write(
    folder.join("worker.js"),
    added["source"].as_str().expect("source"),
  )
  .expect("write");
  wait_for_body(&client, &url, added["body"].as_str().expect("body")).await;

  let edited = &exp["edited"];
  std::fs::write(
    folder.join("worker.js"),
    edited["source"].as_str().expect("source"),
  )
  .expect("edit");
  wait_for_body(&client, &url, edited["body"].as_str().expect("body")).await;

  std::fs::remove_dir_all(&folder).expect("remove folder");
  let deadline = std::time::Instant::now() + Duration::from_secs(10);
  while client.get(&url).send().await.expect("request").status() != 404 {
    assert!(
      std::time::Instant::now() < deadline,
      "{name} is still served after its folder was removed"
    );
    tokio::time::sleep(Duration::from_millis(25)).await;
  }
  // The other workers were not disturbed.
  let beta = client.get(server.url("/beta/")).send().await.expect("beta");
  assert_eq!(beta.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn code_caches_land_in_the_worker_folder_without_reloading_it() {
  let exp = expected("eviction");
  let dir = tempfile::tempdir().expect("tempdir");
  let worker = dir.path().join("counter");
  std::fs::create_dir(&worker).expect("folder");
  std::fs::copy(
    crate::util::fixtures_dir().join("eviction/worker.js"),
    worker.join("worker.js"),
  )
  .expect("worker");
  let server = TestServer::folder(dir.path()).await;
  let client = http1();
  let url = server.url("/counter/");
  let body = |n: u32| format!("counter {n}");
  assert_eq!(
    get_text(&client, &url).await,
    exp["first_round_body"]
      .as_str()
      .expect("body")
      .replace("{name}", "counter")
  );

  let cache = worker.join(".outpost/code-cache");
  let deadline = std::time::Instant::now() + Duration::from_secs(10);
  while std::fs::read_dir(&cache).map_or(0, |d| d.count()) == 0 {
    assert!(
      std::time::Instant::now() < deadline,
      "no code cache in {cache:?}"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
  }
  // Longer than the watcher's debounce: a reload would restart the count.
  tokio::time::sleep(Duration::from_millis(500)).await;
  assert_eq!(
    get_text(&client, &url).await,
    body(2),
    "the worker was reloaded"
  );
}

/// A worker whose top level throws is not run again for every request: for
/// a few seconds after a failed start its requests get 503 at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_fails_to_start_is_not_restarted_for_every_request() {
  let root = tempfile::tempdir().expect("tempdir");
  let broken = root.path().join("broken");
  std::fs::create_dir(&broken).expect("folder");
  // The marker is unique in this test binary's shared logs.
  let marker = "top level broken on purpose 5e1d";
  std::fs::write(
    broken.join("worker.js"),
    format!(
      "throw new Error({marker:?});\nexport default {{ fetch() {{ return new Response('no') }} }};\n"
    ),
  )
  .expect("worker");
  let server = TestServer::folder(root.path()).await;
  let client = http1();
  for _ in 0..3 {
    let response = client
      .get(server.url("/broken/"))
      .send()
      .await
      .expect("request");
    assert_eq!(response.status().as_u16(), 503);
  }
  assert!(wait_for_log(marker, Duration::from_secs(5)).await);
  assert_eq!(
    count_in_logs(marker),
    1,
    "one failed start, not one per request"
  );
}

/// `path` on the worker reached by Host `<name>.localhost`: status and body.
async fn get_by_host(
  client: &reqwest::Client,
  server: &TestServer,
  name: &str,
  path: &str,
) -> (u16, String) {
  let response = client
    .get(server.url(path))
    .header("host", format!("{name}.localhost:{}", server.addr.port()))
    .send()
    .await
    .expect("an answer");
  let status = response.status().as_u16();
  (status, response.text().await.expect("a body"))
}

/// Asks until `path` of `name` answers 200 with `want`, as the folder
/// reloads.
async fn until_by_host(
  client: &reqwest::Client,
  server: &TestServer,
  name: &str,
  path: &str,
  want: &str,
) {
  let deadline = std::time::Instant::now() + Duration::from_secs(10);
  loop {
    let (status, body) = get_by_host(client, server, name, path).await;
    if status == 200 && body == want {
      return;
    }
    assert!(
      std::time::Instant::now() < deadline,
      "{name}{path}: {status} {body:?}, not {want:?}"
    );
    tokio::time::sleep(Duration::from_millis(25)).await;
  }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_with_assets_serves_them_before_its_worker() {
  let (dir, server, _) = start().await;
  let client = http1();
  // A worker with [assets], and a project of assets alone.
  let site = dir.path().join("site");
  std::fs::create_dir_all(site.join("public")).expect("folders");
  std::fs::write(
    site.join("wrangler.toml"),
    "main = \"worker.js\"\n[assets]\ndirectory = \"public\"\nbinding = \"ASSETS\"\n",
  )
  .expect("config");
  std::fs::write(
    site.join("worker.js"),
    "export default { async fetch(request, env) { \
       const asset = await env.ASSETS.fetch(new URL('/hello.txt', request.url)); \
       return new Response(`worker saw: ${await asset.text()}`); } };",
  )
  .expect("worker");
  std::fs::write(site.join("public/hello.txt"), "hello asset").expect("asset");
  let bare = dir.path().join("bare");
  std::fs::create_dir_all(bare.join("static")).expect("folders");
  std::fs::write(
    bare.join("outpost.toml"),
    "[assets]\ndirectory = \"static\"\n",
  )
  .expect("config");
  std::fs::write(bare.join("static/index.html"), "<h1>bare</h1>").expect("asset");

  until_by_host(&client, &server, "site", "/hello.txt", "hello asset").await;
  assert_eq!(
    get_by_host(&client, &server, "site", "/other").await,
    (200, "worker saw: hello asset".into())
  );
  until_by_host(&client, &server, "bare", "/", "<h1>bare</h1>").await;
  assert_eq!(
    get_by_host(&client, &server, "bare", "/missing").await.0,
    404
  );

  // An edited asset is served once the folder reloads.
  std::fs::write(site.join("public/hello.txt"), "hello again").expect("edit");
  until_by_host(&client, &server, "site", "/hello.txt", "hello again").await;
}
