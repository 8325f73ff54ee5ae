//! wrangler's config files: read by `outpost dev` with no arguments, merged
//! with outpost.toml, `[env.<name>]` with wrangler's inheritance rules,
//! `.dev.vars`, and unknown keys warned about, never refused.

use std::path::Path;

use outpost_edge::config::{parse_dotenv, read_dev_vars, read_project};

use crate::util::{DevProcess, get_text, http1, outpost};

fn write(dir: &Path, name: &str, text: &str) {
  let path = dir.join(name);
  if let Some(parent) = path.parent() {
    std::fs::create_dir_all(parent).expect("folder");
  }
  std::fs::write(path, text).expect("write");
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_with_no_arguments_runs_a_wrangler_jsonc_project() {
  let project = tempfile::tempdir().expect("temp dir");
  write(
    project.path(),
    "src/index.ts",
    "export default { async fetch(_r: Request, env: any): Promise<Response> {\n\
     return Response.json({ greeting: env.GREETING, count: env.COUNT, secret: env.API_KEY,\n\
     kv: typeof env.CACHE?.get }); } };\n",
  );
  write(
    project.path(),
    "wrangler.jsonc",
    r#"{
      // Comments and trailing commas, as create-cloudflare writes them.
      "$schema": "node_modules/wrangler/config-schema.json",
      "name": "jsonc-app",
      "main": "src/index.ts",
      "compatibility_date": "2025-09-01",
      "compatibility_flags": ["nodejs_compat"],
      "vars": { "GREETING": "hello", "COUNT": 3, },
      "kv_namespaces": [{ "binding": "CACHE", "id": "0123456789abcdef0123456789abcdef", "preview_id": "preview" }],
      "durable_objects": { "bindings": [{ "name": "ROOM", "class_name": "Room" }] },
      "observability": { "enabled": true },
    }"#,
  );
  write(project.path(), ".dev.vars", "API_KEY=\"from .dev.vars\"\n");
  let dev = DevProcess::start(project.path(), &[]).await;
  let url = dev.url.clone();
  let body = get_text(&http1(), &url).await;
  let stderr = dev
    .wait_for_stderr(".dev.vars", std::time::Duration::from_secs(5))
    .await;
  drop(dev);
  let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
  assert_eq!(
    body,
    serde_json::json!({ "greeting": "hello", "count": "3", "secret": "from .dev.vars", "kv": "function" })
  );
  assert!(
    stderr.contains("`durable_objects` is not supported by Outpost; ignored"),
    "unknown keys are named in a warning: {stderr}"
  );
  assert!(stderr.contains("`observability`"), "{stderr}");
  assert!(stderr.contains(".dev.vars"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_env_picks_the_section_and_its_dev_vars() {
  let project = tempfile::tempdir().expect("temp dir");
  write(
    project.path(),
    "index.js",
    "export default { fetch(_r, env) { return new Response(`${env.STAGE}/${env.TOKEN}/${env.TOP ?? 'none'}`); } };\n",
  );
  write(
    project.path(),
    "wrangler.toml",
    "name = \"app\"\nmain = \"index.js\"\n[vars]\nSTAGE = \"prod\"\nTOP = \"top\"\n\
     [env.staging.vars]\nSTAGE = \"staging\"\n",
  );
  write(project.path(), ".dev.vars", "TOKEN=default\n");
  write(project.path(), ".dev.vars.staging", "TOKEN=staging-token\n");
  let dev = DevProcess::start(project.path(), &[]).await;
  let url = dev.url.clone();
  let plain = get_text(&http1(), &url).await;
  drop(dev);
  assert_eq!(plain, "prod/default/top");
  let dev = DevProcess::start(project.path(), &["--env", "staging"]).await;
  let url = dev.url.clone();
  let staging = get_text(&http1(), &url).await;
  drop(dev);
  assert_eq!(
    staging, "staging/staging-token/none",
    "vars are not inherited"
  );

  let refused = outpost()
    .args(["dev", "--port", "0", "--env", "nope"])
    .current_dir(project.path())
    .output()
    .expect("run");
  assert!(!refused.status.success());
  assert!(String::from_utf8_lossy(&refused.stderr).contains("no [env.nope] section"));
}

#[test]
fn environments_follow_wranglers_inheritance_rules() {
  let project = tempfile::tempdir().expect("temp dir");
  write(
    project.path(),
    "wrangler.toml",
    r#"
name = "shop"
main = "src/worker.ts"
compatibility_date = "2025-09-01"
compatibility_flags = ["nodejs_compat"]
routes = ["shop.example/*"]
[limits]
cpu_ms = 100
[vars]
MODE = "prod"
[[kv_namespaces]]
binding = "CART"
id = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
[triggers]
crons = ["0 * * * *"]

[env.staging]
route = { pattern = "staging.shop.example", custom_domain = true }
[env.staging.vars]
MODE = "staging"

[env.named]
name = "shop-next"
main = "src/next.ts"
"#,
  );
  let top = read_project(project.path(), None)
    .expect("reads")
    .expect("a project");
  assert_eq!(top.name.as_deref(), Some("shop"));
  assert_eq!(top.routes, ["shop.example/*"]);
  assert_eq!(top.vars["MODE"], "prod");
  assert_eq!(top.kv_namespaces.len(), 1);
  assert_eq!(top.crons, ["0 * * * *"]);
  assert_eq!(top.limits.cpu_ms, Some(100));
  assert!(top.nodejs_compat());

  let staging = read_project(project.path(), Some("staging"))
    .expect("reads")
    .expect("a project");
  assert_eq!(staging.name.as_deref(), Some("shop-staging"));
  assert_eq!(staging.main.as_deref(), Some(Path::new("src/worker.ts")));
  assert_eq!(
    staging.routes,
    ["staging.shop.example/*"],
    "a custom domain serves the whole host"
  );
  assert_eq!(staging.vars["MODE"], "staging");
  assert!(
    staging.kv_namespaces.is_empty(),
    "bindings are not inherited"
  );
  assert_eq!(staging.limits.cpu_ms, Some(100), "limits are");
  assert_eq!(staging.crons, ["0 * * * *"], "triggers are");
  assert!(staging.nodejs_compat(), "flags are");

  let named = read_project(project.path(), Some("named"))
    .expect("reads")
    .expect("a project");
  assert_eq!(named.name.as_deref(), Some("shop-next"));
  assert_eq!(named.main.as_deref(), Some(Path::new("src/next.ts")));
  assert!(named.vars.is_empty());

  assert!(read_project(project.path(), Some("missing")).is_err());
}

#[test]
fn outpost_toml_wins_key_by_key() {
  let project = tempfile::tempdir().expect("temp dir");
  write(
    project.path(),
    "wrangler.json",
    r#"{ "name": "from-wrangler", "main": "a.js", "vars": { "A": "wrangler" }, "limits": { "cpu_ms": 10 } }"#,
  );
  write(
    project.path(),
    "outpost.toml",
    "main = \"b.js\"\nallow_eval = true\n[vars]\nB = \"outpost\"\n",
  );
  let project = read_project(project.path(), None)
    .expect("reads")
    .expect("a project");
  assert_eq!(project.name.as_deref(), Some("from-wrangler"));
  assert_eq!(project.main.as_deref(), Some(Path::new("b.js")));
  assert_eq!(project.vars.len(), 1, "a table is replaced whole");
  assert_eq!(project.vars["B"], "outpost");
  assert_eq!(project.limits.cpu_ms, Some(10));
  assert!(project.allow_eval);
  assert_eq!(project.files.len(), 2);
}

#[test]
fn bad_values_are_refused_with_the_file_and_key() {
  let project = tempfile::tempdir().expect("temp dir");
  write(project.path(), "wrangler.toml", "name = 5\n");
  let err = read_project(project.path(), None).expect_err("refused");
  assert!(
    err.to_string().contains("wrangler.toml") && err.to_string().contains("`name`"),
    "{err}"
  );
  write(
    project.path(),
    "wrangler.toml",
    "[[kv_namespaces]]\nid = \"x\"\n",
  );
  let err = read_project(project.path(), None).expect_err("refused");
  assert!(err.to_string().contains("binding"), "{err}");
  std::fs::remove_file(project.path().join("wrangler.toml")).expect("rm");
  write(project.path(), "wrangler.jsonc", "{ \"name\": ");
  assert!(read_project(project.path(), None).is_err());
}

#[test]
fn dev_vars_parse_as_dotenv() {
  let vars = parse_dotenv(
    "# a comment\n\nPLAIN=value # trailing comment\nexport EXPORTED=yes\nQUOTED=\"two words\"\n\
     SINGLE='$not \\n expanded'\nESCAPED=\"line\\nbreak\"\nMULTI=\"first\nsecond\"\nEMPTY=\n",
  )
  .expect("parses");
  assert_eq!(vars["PLAIN"], "value");
  assert_eq!(vars["EXPORTED"], "yes");
  assert_eq!(vars["QUOTED"], "two words");
  assert_eq!(vars["SINGLE"], "$not \\n expanded");
  assert_eq!(vars["ESCAPED"], "line\nbreak");
  assert_eq!(vars["MULTI"], "first\nsecond");
  assert_eq!(vars["EMPTY"], "");
  let err = parse_dotenv("GOOD=1\nno equals sign\n").expect_err("refused");
  assert!(err.contains("line 2"), "{err}");
  assert!(parse_dotenv("OPEN=\"never closed\n").is_err());

  let dir = tempfile::tempdir().expect("temp dir");
  assert!(read_dev_vars(dir.path(), None).expect("none").is_empty());
  write(dir.path(), ".dev.vars", "A=1\n");
  assert_eq!(
    read_dev_vars(dir.path(), Some("qa")).expect("falls back")["A"],
    "1"
  );
}
