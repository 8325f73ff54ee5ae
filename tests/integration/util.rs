//! Starting real servers on loopback port 0, and reading fixtures.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use outpost_edge::local::LocalWorker;
use outpost_edge::local_folder::LocalFolder;
use outpost_edge::{Dispatcher, RouteTable, Routes, ServerConfig};
use outpost_runtime::{ExecutorOptions, WorkerEnv, WorkerLimits};
use tokio::sync::oneshot;

/// The repository's `fixtures/` folder.
pub fn fixtures_dir() -> PathBuf {
  Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The entry module of fixture `name` (worker.js or worker.ts).
pub fn fixture_entry(name: &str) -> PathBuf {
  let dir = fixtures_dir().join(name);
  let js = dir.join("worker.js");
  if js.exists() {
    js
  } else {
    dir.join("worker.ts")
  }
}

/// A copy of fixture folder `name` in a temporary folder, for tests that
/// change it or serve it as a folder of workers.
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
  let dir = tempfile::tempdir().expect("tempdir");
  copy_tree(&fixtures_dir().join(name), dir.path());
  dir
}

/// Copies folder `from` into `to`, files and folders (symbolic links, such
/// as node_modules/.bin, are not needed to run and are left out).
pub fn copy_tree(from: &Path, to: &Path) {
  std::fs::create_dir_all(to).expect("create dir");
  for entry in std::fs::read_dir(from).expect("read dir") {
    let entry = entry.expect("entry");
    let target = to.join(entry.file_name());
    let kind = entry.file_type().expect("type");
    if kind.is_dir() {
      copy_tree(&entry.path(), &target);
    } else if kind.is_file() {
      std::fs::copy(entry.path(), target).expect("copy");
    }
  }
}

/// Fixture `name`'s expected.json.
pub fn expected(name: &str) -> serde_json::Value {
  let path = fixtures_dir().join(name).join("expected.json");
  let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
  serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Everything logged through `tracing` by any thread of this test binary.
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
  fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
    self
      .0
      .lock()
      .expect("log buffer poisoned")
      .extend_from_slice(buf);
    Ok(buf.len())
  }
  fn flush(&mut self) -> std::io::Result<()> {
    Ok(())
  }
}

fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
  LOGS
    .get_or_init(|| {
      let buffer = Arc::new(Mutex::new(Vec::new()));
      let writer = LogWriter(buffer.clone());
      tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
      buffer
    })
    .clone()
}

/// Waits up to `timeout` for the captured logs to contain `needle`.
pub async fn wait_for_log(needle: &str, timeout: Duration) -> bool {
  let logs = capture_logs();
  let deadline = Instant::now() + timeout;
  loop {
    if String::from_utf8_lossy(&logs.lock().expect("log buffer poisoned")).contains(needle) {
      return true;
    }
    if Instant::now() > deadline {
      return false;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
  }
}

/// How many times `needle` appears in the captured logs so far.
pub fn count_in_logs(needle: &str) -> usize {
  let logs = capture_logs();
  let text = String::from_utf8_lossy(&logs.lock().expect("log buffer poisoned")).into_owned();
  text.matches(needle).count()
}

/// Resolves when a watcher should stop.
type Until = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
/// A running watcher.
type Watching = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A server on 127.0.0.1 port 0, stopped on drop: one worker (`outpost
/// dev`) or a folder of workers (`outpost edge --local`).
pub struct TestServer {
  /// Where it listens.
  pub addr: SocketAddr,
  /// Its executor threads.
  pub dispatcher: Arc<Dispatcher>,
  stop: Option<oneshot::Sender<()>>,
  served: Option<tokio::task::JoinHandle<()>>,
}

/// How a [`TestServer`] is set up.
#[derive(Default)]
pub struct TestServerOptions {
  /// Plain vars for `env`.
  pub vars: Vec<(String, String)>,
  /// Reload the worker when its files change.
  pub watch: bool,
  /// Server limits.
  pub config: ServerConfig,
  /// The worker's limits.
  pub limits: WorkerLimits,
  /// KV bindings: (binding name, namespace id).
  pub kv_bindings: Vec<(String, String)>,
  /// What serves the KV bindings.
  pub kv_backend: Option<Arc<dyn outpost_protocol::KvBackend>>,
}

impl TestServer {
  /// Serves fixture `name` with default options.
  pub async fn fixture(name: &str) -> Self {
    Self::start(&fixture_entry(name), TestServerOptions::default()).await
  }

  /// Serves the worker at `entry`.
  pub async fn start(entry: &Path, options: TestServerOptions) -> Self {
    capture_logs();
    let dispatcher = Arc::new(Dispatcher::start(2).expect("executor threads start"));
    let name = "test-worker".to_owned();
    let mut env = WorkerEnv::default();
    env.vars.extend(options.vars);
    if let Some(backend) = options.kv_backend {
      for (binding, id) in options.kv_bindings {
        let namespace = outpost_runtime::KvNamespace {
          id,
          backend: backend.clone(),
        };
        env.kv.insert(binding, namespace);
      }
    }
    let worker = LocalWorker {
      name: name.clone(),
      entry: entry.to_owned(),
      env: Arc::new(env),
      limits: options.limits.clone(),
      executor: dispatcher.executor_for(&name).clone(),
      lazy: false,
      code_cache_dir: None,
      nodejs_compat: false,
    };
    let dirs = worker
      .load()
      .await
      .unwrap_or_else(|e| panic!("{}: {e}", entry.display()));
    let routes = Routes::new(RouteTable::catch_all(name));
    let watch = options.watch.then_some(Box::new(move |until: Until| {
      Box::pin(async move { worker.watch(dirs, until).await.expect("watching starts") }) as Watching
    }) as Box<dyn FnOnce(Until) -> Watching + Send>);
    Self::serve(dispatcher, routes, options.config, watch).await
  }

  /// Serves fixture `name` under `limits`.
  pub async fn fixture_with(name: &str, limits: WorkerLimits) -> Self {
    let options = TestServerOptions {
      limits,
      ..Default::default()
    };
    Self::start(&fixture_entry(name), options).await
  }

  /// Serves every worker folder under `root`, following changes to it.
  pub async fn folder(root: &Path) -> Self {
    Self::folder_with(root, ExecutorOptions::default()).await
  }

  /// As [`TestServer::folder`], with executors set up as `options` says.
  pub async fn folder_with(root: &Path, options: ExecutorOptions) -> Self {
    Self::folder_opening(root, options, outpost_runtime::OutboundPolicy::default()).await
  }

  /// As [`TestServer::folder_with`], with `outbound` opened to every
  /// worker's `fetch()` (`outpost edge --allow-outbound`).
  pub async fn folder_opening(
    root: &Path,
    options: ExecutorOptions,
    outbound: outpost_runtime::OutboundPolicy,
  ) -> Self {
    capture_logs();
    let dispatcher = Arc::new(Dispatcher::start_with(2, &options).expect("executor threads start"));
    let routes = Routes::default();
    let root = root.canonicalize().expect("canonical root");
    let mut folder =
      LocalFolder::new(root, dispatcher.clone(), routes.clone()).with_outbound(outbound);
    folder.load().await.expect("the folder is readable");
    let watch = Box::new(move |until: Until| {
      Box::pin(async move { folder.watch(until).await.expect("watching starts") }) as Watching
    }) as Box<dyn FnOnce(Until) -> Watching + Send>;
    Self::serve(dispatcher, routes, ServerConfig::default(), Some(watch)).await
  }

  /// Runs the server on 127.0.0.1 port 0, and `watch` beside it until the
  /// server stops.
  async fn serve(
    dispatcher: Arc<Dispatcher>,
    routes: Routes,
    config: ServerConfig,
    watch: Option<Box<dyn FnOnce(Until) -> Watching + Send>>,
  ) -> Self {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
      .await
      .expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let (stop_watch, watch_stopped) = oneshot::channel::<()>();
    if let Some(watch) = watch {
      let until: Until = Box::pin(async move {
        let _ = watch_stopped.await;
      });
      tokio::spawn(watch(until));
    }
    let served = {
      let dispatcher = dispatcher.clone();
      tokio::spawn(async move {
        let shutdown = async move {
          let _ = stopped.await;
        };
        outpost_edge::run(listener, routes, dispatcher, config, shutdown).await;
        drop(stop_watch);
      })
    };
    Self {
      addr,
      dispatcher,
      stop: Some(stop),
      served: Some(served),
    }
  }

  /// The absolute URL of `path` on this server.
  pub fn url(&self, path: &str) -> String {
    format!("http://{}{path}", self.addr)
  }

  /// Begins graceful shutdown and returns the task that completes with it.
  pub fn shutdown(&mut self) -> tokio::task::JoinHandle<()> {
    if let Some(stop) = self.stop.take() {
      let _ = stop.send(());
    }
    self.served.take().expect("shutdown is called once")
  }
}

impl Drop for TestServer {
  fn drop(&mut self) {
    if let Some(stop) = self.stop.take() {
      let _ = stop.send(());
    }
  }
}

/// GETs `url` and returns the body as text.
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
  client
    .get(url)
    .send()
    .await
    .expect("request")
    .text()
    .await
    .expect("body")
}

/// Polls `url` until it answers `want`, or panics after a generous deadline
/// (reloads and background work take a moment; the figure is not a timing
/// assertion).
pub async fn wait_for_body(client: &reqwest::Client, url: &str, want: &str) {
  let deadline = Instant::now() + Duration::from_secs(10);
  loop {
    let got = get_text(client, url).await;
    if got == want {
      return;
    }
    assert!(
      Instant::now() < deadline,
      "{url} still answers {got:?}, expected {want:?}"
    );
    tokio::time::sleep(Duration::from_millis(25)).await;
  }
}

/// Default limits, with `allow` opened to the worker's outbound requests.
pub fn limits_allowing(allow: &[&str]) -> WorkerLimits {
  WorkerLimits {
    outbound: Arc::new(outpost_runtime::OutboundPolicy::parse(allow).expect("a valid allow-list")),
    ..WorkerLimits::default()
  }
}

/// An HTTP/1.1 client.
pub fn http1() -> reqwest::Client {
  reqwest::Client::builder()
    .http1_only()
    .build()
    .expect("client builds")
}

/// The `outpost` binary of this build. `make test` builds it before the
/// tests; run `cargo build -p outpost` first when calling cargo directly.
pub fn outpost() -> std::process::Command {
  let target = std::env::var_os("CARGO_TARGET_DIR")
    .map(PathBuf::from)
    .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
  let profile = if cfg!(debug_assertions) {
    "debug"
  } else {
    "release"
  };
  let binary = target.join(profile).join("outpost");
  assert!(
    binary.exists(),
    "{} is missing: build it first with `cargo build -p outpost` (`make test` does)",
    binary.display()
  );
  std::process::Command::new(binary)
}

/// Starts the `outpost` process `command` (a server that prints
/// `... at http://ADDR/` as its first stdout line), and returns that URL.
pub async fn ready_url(child: &mut std::process::Child) -> String {
  use std::io::BufRead;
  let stdout = child.stdout.take().expect("stdout is piped");
  let line = tokio::task::spawn_blocking(move || {
    let mut line = String::new();
    std::io::BufReader::new(stdout)
      .read_line(&mut line)
      .map(|_| line)
  })
  .await
  .expect("join")
  .expect("a ready line");
  match line.split(" at ").nth(1) {
    Some(url) => url.trim().to_owned(),
    None => {
      let _ = child.kill();
      panic!("no ready line, got {line:?}");
    }
  }
}

/// `outpost dev` as a process, killed on drop, with what it writes to
/// stderr collected as it goes.
pub struct DevProcess {
  child: std::process::Child,
  /// Where it serves, with a trailing slash.
  pub url: String,
  stderr: Arc<Mutex<String>>,
}

impl DevProcess {
  /// `outpost dev --port 0 --no-watch ARGS` run in `dir`.
  pub async fn start(dir: &Path, args: &[&str]) -> Self {
    Self::start_with_env(dir, args, &[]).await
  }

  /// As [`DevProcess::start`], with `env` added to its environment.
  pub async fn start_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
    let mut child = outpost()
      .envs(env.iter().copied())
      .arg("dev")
      .args(["--port", "0", "--no-watch"])
      .args(args)
      .current_dir(dir)
      .stdout(std::process::Stdio::piped())
      .stderr(std::process::Stdio::piped())
      .spawn()
      .expect("start outpost dev");
    let stderr = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().expect("stderr is piped");
    let collected = stderr.clone();
    // Drained for the process's whole life, so it never blocks on stderr.
    std::thread::spawn(move || {
      use std::io::BufRead;
      for line in std::io::BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        let mut text = collected.lock().expect("stderr buffer");
        text.push_str(&line);
        text.push('\n');
      }
    });
    let url = ready_url(&mut child).await;
    Self { child, url, stderr }
  }

  /// What it has written to stderr so far.
  pub fn stderr(&self) -> String {
    self.stderr.lock().expect("stderr buffer").clone()
  }

  /// Waits up to `timeout` for stderr to contain `needle`; returns stderr.
  pub async fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
      let text = self.stderr();
      if text.contains(needle) || Instant::now() > deadline {
        return text;
      }
      tokio::time::sleep(Duration::from_millis(20)).await;
    }
  }
}

impl Drop for DevProcess {
  fn drop(&mut self) {
    let _ = self.child.kill();
    let _ = self.child.wait();
  }
}

/// Makes a token of `scope` with `outpost control token create` on the
/// control plane store that `storage` names (`--data DIR` or `--database
/// URL`), and returns it.
pub fn make_token<S: AsRef<std::ffi::OsStr>>(storage: &[S], scope: &str) -> String {
  let made = outpost()
    .args(["control", "token", "create", "--scope", scope])
    .args(storage)
    .output()
    .expect("token create runs");
  assert!(
    made.status.success(),
    "{}",
    String::from_utf8_lossy(&made.stderr)
  );
  let stdout = String::from_utf8(made.stdout).expect("utf-8");
  assert_eq!(
    stdout.lines().count(),
    1,
    "only the token on stdout: {stdout:?}"
  );
  stdout.trim().to_owned()
}

/// The URL of a new, empty PostgreSQL database, made on the server that
/// `OUTPOST_TEST_DATABASE_URL` names (`make test` and `.ci/run` start one
/// with `scripts/start-postgres.sh` and set it).
pub async fn fresh_postgres_database() -> String {
  let admin = std::env::var("OUTPOST_TEST_DATABASE_URL").expect(
    "OUTPOST_TEST_DATABASE_URL is not set: run `export OUTPOST_TEST_DATABASE_URL=$(scripts/start-postgres.sh)` (make test does)",
  );
  let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
    .await
    .unwrap_or_else(|err| panic!("cannot reach PostgreSQL at {admin}: {err}"));
  tokio::spawn(connection);
  static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
  let name = format!(
    "outpost_test_{}_{}",
    std::process::id(),
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
  );
  // One statement per call: a multi-statement string runs as a transaction,
  // and these cannot.
  for statement in [
    format!("DROP DATABASE IF EXISTS {name}"),
    format!("CREATE DATABASE {name}"),
  ] {
    client
      .batch_execute(&statement)
      .await
      .expect("make a test database");
  }
  let base = admin
    .rsplit_once('/')
    .map_or(admin.as_str(), |(base, _)| base);
  format!("{base}/{name}")
}

/// The stores a control-plane test can run on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
  /// The embedded SQLite store.
  Sqlite,
  /// PostgreSQL, a fresh database per test ([`fresh_postgres_database`]).
  Postgres,
}

/// Makes a `sqlite` and a `postgres` module with a test each for every
/// `async fn name(backend: Backend)` named, so one suite runs on both.
macro_rules! on_both_stores {
  ($($name:ident),* $(,)?) => {
    mod sqlite {
      $(#[tokio::test]
      async fn $name() {
        super::$name($crate::util::Backend::Sqlite).await
      })*
    }
    mod postgres {
      $(#[tokio::test]
      async fn $name() {
        super::$name($crate::util::Backend::Postgres).await
      })*
    }
  };
}

/// The value of metric `name` with all of `labels` in a Prometheus text
/// scrape (which must parse), if it is there.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
  let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
    .expect("the Prometheus text format");
  scrape
    .samples
    .iter()
    .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
    .map(|s| match s.value {
      prometheus_parse::Value::Counter(v)
      | prometheus_parse::Value::Gauge(v)
      | prometheus_parse::Value::Untyped(v) => v,
      _ => f64::NAN,
    })
}
