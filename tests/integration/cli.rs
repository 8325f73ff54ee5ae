//! The real `outpost` binary, run as a process: help, errors, serving, and
//! graceful exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{fixture_entry, get_text, http1, outpost};

#[test]
fn help_lists_the_commands_and_their_options() {
  let top = outpost()
    .arg("--help")
    .output()
    .expect("run outpost --help");
  assert!(top.status.success());
  let text = String::from_utf8_lossy(&top.stdout);
  assert!(
    text.contains("dev") && text.contains("Serve a worker locally"),
    "{text}"
  );

  let dev = outpost()
    .args(["dev", "--help"])
    .output()
    .expect("run outpost dev --help");
  assert!(dev.status.success());
  let text = String::from_utf8_lossy(&dev.stdout);
  for option in [
    "--port",
    "--ip",
    "--var",
    "--max-body-bytes",
    "--max-header-bytes",
    "--allow-outbound",
    "--no-local-fetch",
    "--cache-mb",
  ] {
    assert!(
      text.contains(option),
      "dev --help should mention {option}: {text}"
    );
  }
}

#[test]
fn bad_input_fails_with_a_clear_message() {
  let missing = outpost()
    .args(["dev", "no/such/worker.js"])
    .output()
    .expect("run");
  assert_eq!(missing.status.code(), Some(1));
  let text = String::from_utf8_lossy(&missing.stderr);
  assert!(text.contains("no/such/worker.js is not a file"), "{text}");

  let no_folder = outpost()
    .args(["edge", "--local", "no/such/folder"])
    .output()
    .expect("run");
  assert_eq!(no_folder.status.code(), Some(1));
  assert!(String::from_utf8_lossy(&no_folder.stderr).contains("no/such/folder is not a folder"));

  let entry = fixture_entry("hello");
  let bad_var = outpost()
    .arg("dev")
    .arg(&entry)
    .args(["--var", "NOEQUALS"])
    .output()
    .expect("run");
  assert_eq!(bad_var.status.code(), Some(1));
  assert!(String::from_utf8_lossy(&bad_var.stderr).contains("is not KEY=VALUE"));
}

/// Starts `outpost dev <fixture> --port 0 --no-watch <extra>` and returns
/// the process and the URL its ready line names.
async fn start_dev(fixture: &str, extra: &[&str]) -> (std::process::Child, String) {
  start_dev_at(&fixture_entry(fixture), extra).await
}

/// As [`start_dev`], for the worker at `entry`.
pub(crate) async fn start_dev_at(
  entry: &std::path::Path,
  extra: &[&str],
) -> (std::process::Child, String) {
  let mut child = outpost()
    .arg("dev")
    .arg(entry)
    .args(["--port", "0", "--no-watch"])
    .args(extra)
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("start outpost dev");
  let url = crate::util::ready_url(&mut child).await;
  (child, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_opens_localhost_to_fetch_unless_told_not_to() {
  let origin = crate::origin::Origin::start().await;
  let target: String =
    url::form_urlencoded::byte_serialize(origin.by_name("/hello").as_bytes()).collect();
  let path = format!("get?url={target}");

  let (mut open, url) = start_dev("outbound", &[]).await;
  let answer = get_text(&http1(), &format!("{url}{path}")).await;
  let _ = open.kill();
  let _ = open.wait();
  assert!(answer.contains("hello from origin"), "{answer}");

  let (mut closed, url) = start_dev("outbound", &["--no-local-fetch"]).await;
  let answer = get_text(&http1(), &format!("{url}{path}")).await;
  let _ = closed.kill();
  let _ = closed.wait();
  assert!(answer.contains("a loopback address"), "{answer}");

  let bad = outpost()
    .arg("dev")
    .arg(fixture_entry("outbound"))
    .args(["--allow-outbound", "10.0.0.0/99"])
    .output()
    .expect("run");
  assert_eq!(bad.status.code(), Some(1));
  let text = String::from_utf8_lossy(&bad.stderr);
  assert!(
    text.contains("is not an outbound allow-list entry"),
    "{text}"
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_reads_outpost_toml_beside_the_entry() {
  let dir = tempfile::tempdir().expect("temp dir");
  std::fs::write(
    dir.path().join("worker.js"),
    "export default { fetch(request, env) { return new Response(`${env.GREETING} ${env.OTHER}`); } };",
  )
  .expect("worker.js");
  std::fs::write(
    dir.path().join("outpost.toml"),
    "[vars]\nGREETING = \"from toml\"\nOTHER = \"kept\"\n",
  )
  .expect("outpost.toml");
  let entry = dir.path().join("worker.js");

  let (mut plain, url) = start_dev_at(&entry, &[]).await;
  let text = get_text(&http1(), &url).await;
  let _ = plain.kill();
  let _ = plain.wait();
  assert_eq!(text, "from toml kept");

  let (mut overridden, url) = start_dev_at(&entry, &["--var", "GREETING=from the flag"]).await;
  let text = get_text(&http1(), &url).await;
  let _ = overridden.kill();
  let _ = overridden.wait();
  assert_eq!(text, "from the flag kept");

  // A key Outpost knows with a value it cannot use is refused; keys it
  // does not know are only warned about (tests/integration/wrangler.rs).
  std::fs::write(
    dir.path().join("outpost.toml"),
    "[limits]\ncpu_ms = \"fast\"\n",
  )
  .expect("outpost.toml");
  let bad = outpost().arg("dev").arg(&entry).output().expect("run");
  assert_eq!(bad.status.code(), Some(1));
  let text = String::from_utf8_lossy(&bad.stderr);
  assert!(
    text.contains("outpost.toml") && text.contains("limits"),
    "{text}"
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_serves_a_worker_and_exits_cleanly_on_sigterm() {
  let (mut child, url) = start_dev("hello", &[]).await;

  assert_eq!(get_text(&http1(), &url).await, "Hello from Outpost!\n");

  let pid = child.id().to_string();
  assert!(
    Command::new("kill")
      .args(["-TERM", &pid])
      .status()
      .expect("kill")
      .success()
  );
  let status = tokio::task::spawn_blocking(move || child.wait())
    .await
    .expect("join")
    .expect("wait");
  assert!(
    status.success(),
    "outpost dev exits 0 on SIGTERM, got {status}"
  );
  tokio::time::sleep(Duration::from_millis(50)).await;
}

#[test]
fn every_command_has_help() {
  for command in [
    &["dev"][..],
    &["edge"],
    &["control"],
    &["control", "token", "create"],
    &["login"],
    &["deploy"],
    &["versions"],
    &["versions", "deploy"],
    &["secret"],
    &["secret", "put"],
    &["init"],
    &["whoami"],
    &["triggers"],
    &["rollback"],
    &["routes"],
    &["routes", "add"],
    &["edges"],
    &["edges", "remove"],
    &["delete"],
    &["kv"],
    &["kv", "namespace", "create"],
    &["kv", "key", "put"],
    &["kv", "key", "get"],
    &["kv", "key", "list"],
    &["kv", "bulk", "put"],
    &["tail"],
    &["certs"],
    &["certs", "add"],
  ] {
    let help = outpost().args(command).arg("--help").output().expect("run");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
      help.status.success() && text.contains("Usage: outpost"),
      "{command:?}: {text}"
    );
  }
}

#[test]
fn dev_without_an_entry_reads_outpost_toml() {
  let project = tempfile::tempdir().expect("temp dir");
  std::fs::create_dir_all(project.path().join("src")).expect("src");
  std::fs::write(
    project.path().join("src/index.js"),
    "export default { fetch(_r, env) { return new Response('from toml ' + env.WHO); } };\n",
  )
  .expect("entry");
  std::fs::write(
    project.path().join("outpost.toml"),
    "name = \"site\"\nmain = \"src/index.js\"\nroutes = [\"site.example/*\"]\n[vars]\nWHO = \"dev\"\n",
  )
  .expect("outpost.toml");
  let mut child = outpost()
    .args(["dev", "--port", "0", "--no-watch"])
    .current_dir(project.path())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("start outpost dev");
  let mut line = String::new();
  BufReader::new(child.stdout.take().expect("stdout"))
    .read_line(&mut line)
    .expect("a ready line");
  let url = line
    .split(" at ")
    .nth(1)
    .expect("the URL")
    .trim()
    .to_owned();
  let runtime = tokio::runtime::Runtime::new().expect("tokio");
  let body = runtime.block_on(get_text(&http1(), &url));
  let _ = child.kill();
  let _ = child.wait();
  assert_eq!(
    body, "from toml dev",
    "the entry and the vars come from ./outpost.toml"
  );

  let empty = tempfile::tempdir().expect("temp dir");
  let refused = outpost()
    .args(["dev", "--port", "0"])
    .current_dir(empty.path())
    .output()
    .expect("run");
  assert!(!refused.status.success());
  assert!(String::from_utf8_lossy(&refused.stderr).contains("no entry given"));
}

#[tokio::test(flavor = "multi_thread")]
async fn init_makes_projects_that_run() {
  let dir = tempfile::tempdir().expect("temp dir");
  let made = outpost()
    .args(["init", "greeter"])
    .current_dir(dir.path())
    .output()
    .expect("outpost init runs");
  let out = String::from_utf8_lossy(&made.stdout);
  assert!(
    made.status.success() && out.contains("made worker greeter"),
    "{out}"
  );
  let project = dir.path().join("greeter");
  let config = std::fs::read_to_string(project.join("wrangler.toml")).expect("wrangler.toml");
  assert!(
    config.contains("name = \"greeter\"") && config.contains("compatibility_date = \"20"),
    "{config}"
  );
  let dev = crate::util::DevProcess::start(&project, &[]).await;
  let body = crate::util::get_text(&http1(), &format!("{}hi", dev.url)).await;
  assert_eq!(body, "Hello from /hi!\n");
  drop(dev);

  // A folder's name becomes a worker name.
  let named = outpost()
    .args(["init", "My Worker_2"])
    .current_dir(dir.path())
    .output()
    .expect("outpost init runs");
  assert!(
    String::from_utf8_lossy(&named.stdout).contains("made worker my-worker-2"),
    "{}",
    String::from_utf8_lossy(&named.stderr)
  );

  // Nothing is overwritten.
  let again = outpost()
    .args(["init", "greeter", "--template", "scheduled"])
    .current_dir(dir.path())
    .output()
    .expect("outpost init runs");
  assert!(!again.status.success());
  assert!(
    String::from_utf8_lossy(&again.stderr).contains("already holds a project"),
    "{}",
    String::from_utf8_lossy(&again.stderr)
  );

  // The Hono template, with hono as npm installed it for the fixtures.
  let made = outpost()
    .args(["init", "api", "--template", "hono"])
    .current_dir(dir.path())
    .output()
    .expect("outpost init runs");
  assert!(String::from_utf8_lossy(&made.stdout).contains("npm install && outpost dev"));
  let api = dir.path().join("api");
  let hono = crate::util::fixtures_dir().join("npm/hono-app/node_modules/hono");
  assert!(
    hono.is_dir(),
    "run scripts/npm-fixtures.sh (`make test` does)"
  );
  crate::util::copy_tree(&hono, &api.join("node_modules/hono"));
  let dev = crate::util::DevProcess::start(&api, &[]).await;
  let body = crate::util::get_text(&http1(), &format!("{}api/hello/ann", dev.url)).await;
  assert_eq!(body, r#"{"message":"Hello, ann"}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn whoami_names_the_control_plane_and_scope() {
  let dir = tempfile::tempdir().expect("temp dir");
  let control = crate::cluster::Control::start(dir.path(), 0, 0, None);
  let out = outpost()
    .args(["whoami", "--url", &control.api, "--token", &control.admin])
    .output()
    .expect("outpost whoami runs");
  let text = String::from_utf8_lossy(&out.stdout);
  assert!(
    out.status.success() && text.contains("scope admin"),
    "{text}"
  );
  assert!(text.contains(control.api.trim_end_matches("/v1")), "{text}");
  let refused = outpost()
    .args([
      "whoami",
      "--url",
      &control.api,
      "--token",
      "opt_not_a_token",
    ])
    .output()
    .expect("outpost whoami runs");
  assert!(!refused.status.success());
  assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown token"));
}
