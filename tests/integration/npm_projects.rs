//! Real Workers projects with real packages from the npm registry, run as a
//! user would: `outpost dev` with no arguments in the project's folder, and
//! `outpost deploy` of the same folder to a control plane and an edge on
//! loopback. `scripts/npm-fixtures.sh` (run by `make test`) installs them:
//! fixtures/npm/<project> from their lock files, and create-cloudflare's
//! own templates under target/npm-fixtures/templates/.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::cluster::{Control, start_edge};
use crate::util::{DevProcess, copy_tree, fixtures_dir, http1, make_token, outpost};

/// A copy of `from` (node_modules included) in a temporary folder.
pub(crate) fn copy_project(from: &Path) -> tempfile::TempDir {
  assert!(
    from.join("node_modules").is_dir() || !from.join("package-lock.json").exists(),
    "{} has no node_modules: run scripts/npm-fixtures.sh (`make test` does)",
    from.display()
  );
  let dir = tempfile::tempdir().expect("tempdir");
  copy_tree(from, dir.path());
  dir
}

pub(crate) fn npm_fixture(name: &str) -> tempfile::TempDir {
  copy_project(&fixtures_dir().join("npm").join(name))
}

pub(crate) fn c3_template(name: &str) -> tempfile::TempDir {
  let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/npm-fixtures/templates");
  assert!(
    root.join(name).is_dir(),
    "{} is missing: run scripts/npm-fixtures.sh (`make test` does)",
    root.join(name).display()
  );
  copy_project(&root.join(name))
}

/// A control plane on SQLite and one edge joined to it, kept in `data`;
/// returns them and the edge's URL.
pub(crate) fn control_and_edge(data: &Path) -> (Control, crate::cluster::Process, String) {
  let control_data = data.join("control");
  let control = Control::start(&control_data, 0, 0, None);
  let join = make_token(
    &["--data", control_data.to_str().expect("utf-8")],
    "edge-join",
  );
  let (edge, edge_url) = start_edge(&control.api, Some(&join), &data.join("edge"));
  (control, edge, edge_url)
}

/// `outpost deploy` run in `dir` against `control`; its stdout, once it
/// has succeeded.
pub(crate) fn deploy_folder(control: &Control, dir: &Path) -> String {
  let deployed = outpost()
    .args(["deploy", "--url", &control.api, "--token", &control.admin])
    .current_dir(dir)
    .output()
    .expect("outpost deploy runs");
  let out = String::from_utf8_lossy(&deployed.stdout).into_owned();
  assert!(
    deployed.status.success(),
    "{out}{}",
    String::from_utf8_lossy(&deployed.stderr)
  );
  out
}

pub(crate) async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
  let response = client.get(url).send().await.expect("request");
  let status = response.status().as_u16();
  (status, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hono_app_with_middleware_runs_with_outpost_dev_in_its_folder() {
  let project = npm_fixture("hono-app");
  let dev = DevProcess::start(project.path(), &[]).await;
  let url = dev.url.clone();
  let client = http1();

  assert_eq!(
    get(&client, &format!("{url}message")).await,
    (200, "Hello from Hono!".to_owned()),
    "c.env carries wrangler.jsonc's vars"
  );
  let (_, info) = get(&client, &format!("{url}api/info")).await;
  assert_eq!(
    serde_json::from_str::<Value>(&info).expect("JSON"),
    json!({ "runtime": "workerd", "greeting": "Hello" }),
    "Hono detects Workers and reads env through its adapter"
  );

  let preflight = client
    .request(reqwest::Method::OPTIONS, format!("{url}api/info"))
    .header("origin", "https://app.example")
    .header("access-control-request-method", "POST")
    .send()
    .await
    .expect("preflight");
  assert_eq!(preflight.status(), 204);
  assert_eq!(
    preflight.headers()["access-control-allow-origin"],
    "https://app.example"
  );

  let first = client
    .get(format!("{url}etag/page"))
    .send()
    .await
    .expect("etag");
  let etag = first.headers()["etag"].clone();
  let again = client
    .get(format!("{url}etag/page"))
    .header("if-none-match", etag)
    .send()
    .await
    .expect("conditional");
  assert_eq!(again.status(), 304);

  assert_eq!(get(&client, &format!("{url}admin/secret")).await.0, 401);
  let wrong = client
    .get(format!("{url}admin/secret"))
    .basic_auth("admin", Some("guess"))
    .send()
    .await
    .expect("request");
  assert_eq!(wrong.status(), 401);
  let allowed = client
    .get(format!("{url}admin/secret"))
    .basic_auth("admin", Some("s3cret pass"))
    .send()
    .await
    .expect("request");
  assert_eq!(allowed.status(), 200, "the password comes from .dev.vars");
  assert_eq!(allowed.text().await.expect("body"), "welcome, admin");
  drop(dev);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_hono_folder_deploys_unmodified() {
  let data = tempfile::tempdir().expect("temp dir");
  let (control, _edge, edge_url) = control_and_edge(data.path());
  let project = npm_fixture("hono-app");
  let out = deploy_folder(&control, project.path());
  assert!(out.contains("uploaded hono-app v1"), "{out}");
  assert!(out.contains("1/1 edges serving v1"), "{out}");

  // The route from wrangler.jsonc, answered by the edge from the bundle.
  let client = reqwest::Client::builder()
    .resolve(
      "hono.example",
      edge_url
        .trim_start_matches("http://")
        .parse()
        .expect("edge address"),
    )
    .build()
    .expect("client");
  let port = edge_url.rsplit(':').next().expect("port");
  let (status, body) = get(&client, &format!("http://hono.example:{port}/message")).await;
  assert_eq!((status, body.as_str()), (200, "Hello from Hono!"));
  let (_, info) = get(&client, &format!("http://hono.example:{port}/api/info")).await;
  assert_eq!(
    serde_json::from_str::<Value>(&info).expect("JSON")["runtime"],
    "workerd"
  );

  // A nodejs_compat project: its flags and its bare `events` imports
  // (CommonJS among them) travel in the bundle.
  let node_project = npm_fixture("node-compat");
  deploy_folder(&control, node_project.path());
  let answer = reqwest::Client::new()
    .get(format!("{edge_url}/?id=9"))
    .header("host", "node-compat.localhost")
    .send()
    .await
    .expect("request");
  assert_eq!(answer.status(), 200);
  let answer: Value = serde_json::from_str(&answer.text().await.expect("body")).expect("JSON");
  assert_eq!(answer["heard"], "9");
  assert_eq!(answer["globalBuffer"], true);
  assert_eq!(answer["processEnv"], "hello");

  // Deploying again uploads the same content-addressed bundle.
  let again = outpost()
    .args(["deploy", "--url", &control.api, "--token", &control.admin])
    .current_dir(project.path())
    .output()
    .expect("outpost deploy runs");
  assert!(
    String::from_utf8_lossy(&again.stdout).contains("v1 (unchanged)"),
    "{}",
    String::from_utf8_lossy(&again.stdout)
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn create_cloudflare_templates_answer_as_on_workerd() {
  let client = http1();
  for (template, path, want) in [
    ("hello-world-js", "", "Hello World!"),
    ("hello-world-ts", "", "Hello World!"),
    ("hono", "message", "Hello Hono!"),
  ] {
    let project = c3_template(template);
    let dev = DevProcess::start(project.path(), &[]).await;
    let url = dev.url.clone();
    let answer = get(&client, &format!("{url}{path}")).await;
    // The Hono template's `public/` is its `/`.
    let index = match template {
      "hono" => Some(get(&client, &url).await),
      _ => None,
    };
    drop(dev);
    assert_eq!(answer, (200, want.to_owned()), "{template}");
    if let Some(index) = index {
      let page = std::fs::read_to_string(project.path().join("public/index.html")).expect("page");
      assert_eq!(index, (200, page), "{template}'s public/index.html");
    }
  }

  let project = c3_template("scheduled-ts");
  let dev = DevProcess::start(project.path(), &[]).await;
  let url = dev.url.clone();
  let (status, body) = get(&client, &url).await;
  assert_eq!(status, 200);
  assert!(body.contains("/__scheduled?cron=*+*+*+*+*"), "{body}");
  // The URL it points at runs its scheduled(), which fetches
  // api.cloudflare.com: it logs its result, or fails where there is no
  // internet (as here), either way having run.
  let (status, _) = get(&client, &format!("{url}__scheduled?cron=*+*+*+*+*")).await;
  let ran = match status {
    200 => "trigger fired at * * * * *",
    _ => "fetch failed",
  };
  let stderr = dev
    .wait_for_stderr(ran, std::time::Duration::from_secs(10))
    .await;
  assert!(stderr.contains(ran), "{status}: {stderr}");
  drop(dev);

  let project = c3_template("openapi-ts");
  let dev = DevProcess::start(project.path(), &[]).await;
  let url = dev.url.clone();
  let (status, docs) = get(&client, &url).await;
  assert_eq!(status, 200);
  assert!(docs.contains("SwaggerUI"), "chanfana's docs page");
  let (_, schema) = get(&client, &format!("{url}openapi.json")).await;
  let schema: Value = serde_json::from_str(&schema).expect("JSON");
  assert_eq!(schema["openapi"], "3.1.0");
  assert!(schema["paths"]["/api/tasks"]["get"].is_object(), "{schema}");
  let (status, tasks) = get(&client, &format!("{url}api/tasks")).await;
  assert_eq!(status, 200);
  let tasks: Value = serde_json::from_str(&tasks).expect("JSON");
  assert_eq!(tasks["success"], true);
  assert_eq!(tasks["tasks"].as_array().map(Vec::len), Some(2));
  let invalid = client
    .post(format!("{url}api/tasks"))
    .header("content-type", "application/json")
    .body(json!({ "name": 1 }).to_string())
    .send()
    .await
    .expect("request");
  assert_eq!(invalid.status(), 400, "zod validation through chanfana");
  let invalid: Value = serde_json::from_str(&invalid.text().await.expect("body")).expect("JSON");
  assert_eq!(invalid["success"], false);
  drop(dev);
}

#[tokio::test(flavor = "multi_thread")]
async fn itty_router_v5_routes_params_queries_and_errors() {
  let project = npm_fixture("itty-router");
  let dev = DevProcess::start(project.path(), &[]).await;
  let url = dev.url.clone();
  let client = http1();
  let (status, body) = get(&client, &format!("{url}hello/ann")).await;
  assert_eq!((status, body.as_str()), (200, r#"{"hello":"ann"}"#));
  let (_, body) = get(&client, &format!("{url}items/7?sort=asc")).await;
  assert_eq!(body, r#"{"id":"7","sort":"asc"}"#);
  let echoed = client
    .post(format!("{url}echo"))
    .header("content-type", "application/json")
    .body(json!({ "a": [1, 2] }).to_string())
    .send()
    .await
    .expect("request");
  assert_eq!(
    serde_json::from_str::<Value>(&echoed.text().await.expect("body")).expect("JSON"),
    json!({ "received": { "a": [1, 2] } })
  );
  assert_eq!(get(&client, &format!("{url}teapot")).await.0, 418);
  assert_eq!(get(&client, &format!("{url}nowhere")).await.0, 404);
  drop(dev);
}

#[tokio::test(flavor = "multi_thread")]
async fn esm_and_commonjs_packages_from_npm_work_together() {
  let project = npm_fixture("libs");
  let dev = DevProcess::start(project.path(), &[]).await;
  let url = dev.url.clone();
  let response = http1()
    .get(&url)
    .header("cookie", "theme=dark; other=1")
    .send()
    .await
    .expect("request");
  assert_eq!(response.status(), 200);
  assert_eq!(response.headers()["set-cookie"], "seen=yes; HttpOnly");
  assert_eq!(
    serde_json::from_str::<Value>(&response.text().await.expect("body")).expect("JSON"),
    json!({ "sub": "user-1", "theme": "dark", "twoHours": 7_200_000, "project": "libs" }),
    "jose signs and verifies, cookie parses, ms converts"
  );
  drop(dev);
}

#[tokio::test(flavor = "multi_thread")]
async fn nodejs_compat_serves_node_builtins_to_code_and_packages() {
  let project = npm_fixture("node-compat");
  let dev = DevProcess::start(project.path(), &[]).await;
  let url = dev.url.clone();
  let client = http1();
  let (status, body) = get(&client, &format!("{url}?id=7")).await;
  assert_eq!(status, 200, "{body}");
  let body: Value = serde_json::from_str(&body).expect("JSON");
  assert_eq!(
    body,
    json!({
      "store": "7",
      "heard": "7",
      "legacyHeard": true,
      "waited": 2,
      "viaCallback": "7",
      "decoded": "\u{20ac}",
      "bound": "other",
      "buffer": "Hello There!",
      "hex": "6869",
      "base64": "aGVsbG8gd29ybGQ=",
      "fromBase64": "hello world",
      "safeBuffer": "YWJj",
      "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      "md5": "kAFQmDzST7DWlj99KOF/cg==",
      "random": 16,
      "webcrypto": 32,
      "scrypt": "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906",
      "format": "n=42 {\"ok\":true}",
      "path": ["/a/c", "y", ".gz"],
      "win32": "path.win32.resolve() is not implemented.",
      "randomInt": [true, 5],
      "randomFill": 8,
      "processEnv": "hello",
      "globalBuffer": true,
      "createRequire": true,
      "commonjs": true,
      "tick": "ticked",
    })
  );

  // Node streams: split2 (CommonJS on node:stream) into a Web stream, and
  // a Transform read whole after pipeline().
  assert_eq!(
    get(&client, &format!("{url}split")).await,
    (200, "[one][two][three]".to_owned())
  );
  assert_eq!(
    get(&client, &format!("{url}pipeline")).await,
    (200, "NODE STREAMS IN A WORKER\n".to_owned())
  );

  // node:http's client, over fetch() to an origin on this machine (which
  // `outpost dev` lets workers reach).
  let origin = crate::origin::Origin::start().await;
  let (status, body) = get(&client, &format!("{url}http?origin=http://{}", origin.addr)).await;
  assert_eq!(status, 200, "{body}");
  assert_eq!(
    serde_json::from_str::<Value>(&body).expect("JSON"),
    json!({
      "get": { "status": 200, "body": "hello from origin" },
      "posted": { "status": 200, "body": "posted body" },
    })
  );

  // A webhook signed as GitHub signs them: HMAC-SHA256 of the body.
  let payload = r#"{"action":"opened"}"#;
  let signature = {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, b"It's a Secret to Everybody");
    let tag = hmac::sign(&key, payload.as_bytes());
    let hex = outpost_protocol::bundle::hex(tag.as_ref());
    format!("sha256={hex}")
  };
  let signed = client
    .post(format!("{url}webhook"))
    .header("x-hub-signature-256", &signature)
    .body(payload)
    .send()
    .await
    .expect("request");
  assert_eq!(signed.status(), 200);
  assert_eq!(
    signed.text().await.expect("body"),
    r#"{"ok":true,"event":"opened"}"#
  );
  let forged = client
    .post(format!("{url}webhook"))
    .header("x-hub-signature-256", signature.replace('a', "b"))
    .body(payload)
    .send()
    .await
    .expect("request");
  assert_eq!(forged.status(), 401);
  drop(dev);
}

#[test]
fn node_builtins_need_the_flag_under_bare_names_and_missing_ones_are_named() {
  use outpost_runtime::WorkerBundle;
  use outpost_runtime::resolve::ProjectResolver;

  let dir = tempfile::tempdir().expect("temp dir");
  let entry = dir.path().join("worker.js");
  std::fs::write(
    &entry,
    "import { Buffer } from 'buffer';\nexport default {};\n",
  )
  .expect("write");
  let err = WorkerBundle::load_with(&entry, &ProjectResolver::new(false)).expect_err("refused");
  assert!(
    err.to_string().contains("\"buffer\"") && err.to_string().contains("node_modules"),
    "without nodejs_compat a bare name is a package: {err}"
  );
  WorkerBundle::load_with(&entry, &ProjectResolver::new(true))
    .expect("with the flag it is node:buffer");

  std::fs::write(
    &entry,
    "import cp from 'node:child_process';\nexport default {};\n",
  )
  .expect("write");
  let err = WorkerBundle::load_with(&entry, &ProjectResolver::new(true)).expect_err("refused");
  assert!(
    err
      .to_string()
      .contains("node:child_process is not available in Outpost"),
    "{err}"
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn stack_traces_of_bundled_code_name_the_original_files() {
  let project = npm_fixture("bundled");
  for env in [None, Some("inline")] {
    let args: &[&str] = match env {
      Some(env) => &["--env", env],
      None => &[],
    };
    let dev = DevProcess::start(project.path(), args).await;
    let client = http1();
    assert_eq!(
      get(&client, &dev.url).await,
      (200, "bundled by esbuild".to_owned())
    );
    assert_eq!(get(&client, &format!("{}fail", dev.url)).await.0, 500);
    let text = dev
      .wait_for_stderr("index.ts", std::time::Duration::from_secs(5))
      .await;
    assert!(
      text.contains("src/lib/fail.ts:8:9") && text.contains("src/index.ts:6:31"),
      "{env:?}: the trace names the TypeScript sources, not dist/: {text}"
    );
  }
}

#[tokio::test(flavor = "multi_thread")]
async fn edge_local_serves_a_folder_of_wrangler_projects() {
  let root = tempfile::tempdir().expect("temp dir");
  for name in ["hono-app", "node-compat"] {
    let project = npm_fixture(name);
    std::fs::rename(project.path(), root.path().join(name)).expect("move the project in");
  }
  let server = crate::util::TestServer::folder(root.path()).await;
  let client = http1();
  let ask = |host: &str, path: &str| {
    client
      .get(server.url(path))
      .header("host", format!("{host}:{}", server.addr.port()))
      .send()
  };
  let hono = ask("hono-app.localhost", "/message")
    .await
    .expect("request");
  assert_eq!(hono.text().await.expect("body"), "Hello from Hono!");
  let node = ask("node-compat.localhost", "/?id=4")
    .await
    .expect("request");
  let node: Value = serde_json::from_str(&node.text().await.expect("body")).expect("JSON");
  assert_eq!(node["heard"], "4");
  assert_eq!(
    node["globalBuffer"], true,
    "the flag comes from wrangler.toml"
  );
}
