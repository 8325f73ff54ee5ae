//! HTTPS at the edge, checked with curl: two host names with their own
//! certificates chosen by SNI, over HTTP/1.1 and HTTP/2; an unknown name
//! refused in the handshake (and logged); certificates reloaded from
//! their files without a restart.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::cluster::Process;
use crate::util::outpost;

/// A test CA that issues leaf certificates into a folder.
pub(crate) struct TestCa {
  issuer: Issuer<'static, KeyPair>,
  pem: String,
  der: rustls_pki_types::CertificateDer<'static>,
}

impl TestCa {
  pub(crate) fn new() -> Self {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
      .distinguished_name
      .push(DnType::CommonName, "Outpost Test CA");
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("CA certificate");
    Self {
      pem: cert.pem(),
      der: cert.der().clone(),
      issuer: Issuer::new(params, key),
    }
  }

  /// The CA certificate, PEM.
  pub(crate) fn pem(&self) -> &str {
    &self.pem
  }

  /// The CA certificate, DER.
  pub(crate) fn der(&self) -> rustls_pki_types::CertificateDer<'static> {
    self.der.clone()
  }

  /// Writes `<stem>.pem` and `<stem>.key` for `names`, with common name
  /// `common`, into `dir`.
  pub(crate) fn issue(
    &self,
    dir: &Path,
    stem: &str,
    common: &str,
    names: &[&str],
  ) -> (PathBuf, PathBuf) {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    params.distinguished_name.push(DnType::CommonName, common);
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &self.issuer).expect("leaf");
    let (cert_path, key_path) = (
      dir.join(format!("{stem}.pem")),
      dir.join(format!("{stem}.key")),
    );
    // Written beside and renamed, as certificate tools do.
    std::fs::write(dir.join(".cert.tmp"), cert.pem()).expect("write");
    std::fs::write(dir.join(".key.tmp"), key.serialize_pem()).expect("write");
    std::fs::rename(dir.join(".key.tmp"), &key_path).expect("rename");
    std::fs::rename(dir.join(".cert.tmp"), &cert_path).expect("rename");
    (cert_path, key_path)
  }
}

/// `outpost edge --local` over a one-worker folder, serving HTTPS with the
/// given certificates; returns it, its HTTPS port and its log file.
fn start_edge(dir: &Path, certs: &[(PathBuf, PathBuf)]) -> (Process, u16, PathBuf) {
  let workers = dir.join("workers");
  std::fs::create_dir_all(workers.join("site")).expect("folder");
  std::fs::write(
    workers.join("site/worker.js"),
    "export default { fetch(request) { const url = new URL(request.url); \
     return new Response(`${url.protocol}//${url.host} ok`); } };",
  )
  .expect("worker");
  let log = dir.join("edge.log");
  let mut command = outpost();
  command.args(["edge", "--local"]).arg(&workers).args([
    "--port",
    "0",
    "--tls-port",
    "0",
    "--threads",
    "1",
  ]);
  for (cert, key) in certs {
    command
      .arg("--tls-cert")
      .arg(cert)
      .arg("--tls-key")
      .arg(key);
  }
  let mut child = command
    .stdout(Stdio::piped())
    .stderr(std::fs::File::create(&log).expect("log file"))
    .spawn()
    .expect("outpost edge starts");
  let stdout = child.stdout.take().expect("stdout");
  let child = Process(child);
  let mut line = String::new();
  BufReader::new(stdout)
    .read_line(&mut line)
    .expect("a ready line");
  let port = line
    .split_whitespace()
    .find_map(|w| w.strip_prefix("https://"))
    .and_then(|a| a.trim_end_matches('/').rsplit_once(':'))
    .and_then(|(_, p)| p.parse().ok())
    .unwrap_or_else(|| panic!("no https address in {line:?}"));
  (child, port, log)
}

/// What curl saw for `https://<host>:<port>/site/` with `version`
/// (`--http1.1` or `--http2`): its exit code, HTTP version, certificate
/// subject and body.
fn curl(ca: &Path, host: &str, port: u16, version: &str) -> (i32, String, String, String) {
  let out = Command::new("curl")
    .args(["--silent", "--show-error", version, "--cacert"])
    .arg(ca)
    .args([
      "--resolve",
      &format!("{host}:{port}:127.0.0.1"),
      "--write-out",
      "\n%{http_version}\n%{certs}",
      &format!("https://{host}:{port}/site/"),
    ])
    .output()
    .expect("curl runs");
  let text = String::from_utf8_lossy(&out.stdout).into_owned();
  let mut lines = text.lines();
  let body = lines.next().unwrap_or_default().to_owned();
  let http_version = lines.next().unwrap_or_default().to_owned();
  let subject = lines
    .find_map(|l| l.strip_prefix("Subject:"))
    .unwrap_or_default()
    .trim()
    .to_owned();
  (out.status.code().unwrap_or(-1), http_version, subject, body)
}

#[test]
fn each_host_gets_its_certificate_over_http1_and_http2() {
  let dir = tempfile::tempdir().expect("temp dir");
  let ca = TestCa::new();
  let ca_path = dir.path().join("ca.pem");
  std::fs::write(&ca_path, &ca.pem).expect("write");
  let alpha = ca.issue(dir.path(), "alpha", "Alpha Site", &["alpha.test"]);
  let beta = ca.issue(
    dir.path(),
    "beta",
    "Beta Site",
    &["beta.test", "*.beta.test"],
  );
  let (_edge, port, log) = start_edge(dir.path(), &[alpha, beta]);

  for version in ["--http1.1", "--http2"] {
    let want = if version == "--http2" { "2" } else { "1.1" };
    let (code, got, subject, body) = curl(&ca_path, "alpha.test", port, version);
    assert_eq!(code, 0, "{version} alpha");
    assert_eq!(got, want);
    assert_eq!(subject, "CN = Alpha Site");
    assert_eq!(body, format!("https://alpha.test:{port} ok"));
    let (code, got, subject, _) = curl(&ca_path, "beta.test", port, version);
    assert_eq!((code, got.as_str()), (0, want), "{version} beta");
    assert_eq!(subject, "CN = Beta Site");
    let (code, _, subject, _) = curl(&ca_path, "www.beta.test", port, version);
    assert_eq!(code, 0, "a wildcard name");
    assert_eq!(subject, "CN = Beta Site");
  }

  let (code, _, _, _) = curl(&ca_path, "gamma.test", port, "--http1.1");
  assert_eq!(code, 35, "no certificate for the name: the handshake fails");
  let deadline = Instant::now() + Duration::from_secs(5);
  loop {
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    if text.contains("no certificate for this host") && text.contains("gamma.test") {
      break;
    }
    assert!(Instant::now() < deadline, "the refusal is logged: {text}");
    std::thread::sleep(Duration::from_millis(50));
  }
}

#[test]
fn certificates_reload_without_a_restart() {
  let dir = tempfile::tempdir().expect("temp dir");
  let ca = TestCa::new();
  let ca_path = dir.path().join("ca.pem");
  std::fs::write(&ca_path, &ca.pem).expect("write");
  let alpha = ca.issue(dir.path(), "alpha", "Alpha One", &["alpha.test"]);
  let (edge, port, _) = start_edge(dir.path(), &[alpha]);
  assert_eq!(
    curl(&ca_path, "alpha.test", port, "--http2").2,
    "CN = Alpha One"
  );
  assert_eq!(curl(&ca_path, "new.test", port, "--http2").0, 35);

  // New files in place: picked up by the watch.
  ca.issue(
    dir.path(),
    "alpha",
    "Alpha Two",
    &["alpha.test", "new.test"],
  );
  let deadline = Instant::now() + Duration::from_secs(10);
  loop {
    let (code, _, subject, _) = curl(&ca_path, "new.test", port, "--http2");
    if code == 0 && subject == "CN = Alpha Two" {
      break;
    }
    assert!(Instant::now() < deadline, "not reloaded: {code} {subject}");
    std::thread::sleep(Duration::from_millis(100));
  }

  // A broken file is refused, and the loaded certificates serve on.
  std::fs::write(dir.path().join("alpha.pem"), "not a certificate").expect("write");
  std::thread::sleep(Duration::from_millis(500));
  // SIGHUP reloads too (and fails the same way here).
  send_signal(edge.0.id(), "HUP");
  std::thread::sleep(Duration::from_millis(300));
  assert_eq!(
    curl(&ca_path, "alpha.test", port, "--http1.1").2,
    "CN = Alpha Two"
  );
}

/// Sends `signal` (a name, `HUP`) to process `pid`.
fn send_signal(pid: u32, signal: &str) {
  let status = Command::new("kill")
    .arg(format!("-{signal}"))
    .arg(pid.to_string())
    .status()
    .expect("kill runs");
  assert!(status.success());
}

/// `outpost certs <args>` against `control`, as its admin.
fn certs(control: &crate::cluster::Control, args: &[&str]) -> std::process::Output {
  outpost()
    .arg("certs")
    .args(args)
    .args(["--url", &control.api, "--token", &control.admin])
    .output()
    .expect("outpost certs runs")
}

/// Polls curl until `check` holds for what it saw.
fn wait_for_curl(
  ca: &Path,
  host: &str,
  port: u16,
  what: &str,
  check: impl Fn(&(i32, String, String, String)) -> bool,
) {
  let deadline = Instant::now() + Duration::from_secs(15);
  loop {
    let seen = curl(ca, host, port, "--http2");
    if check(&seen) {
      return;
    }
    assert!(Instant::now() < deadline, "{what}: curl saw {seen:?}");
    std::thread::sleep(Duration::from_millis(100));
  }
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_pushed_by_the_control_plane_are_served_and_sealed_at_rest() {
  use crate::cluster::{Control, Storage, start_edge_lines};
  use crate::util::Backend;
  let dir = tempfile::tempdir().expect("temp dir");
  let ca = TestCa::new();
  let ca_path = dir.path().join("ca.pem");
  std::fs::write(&ca_path, &ca.pem).expect("write");
  let storage = Storage::new(Backend::Sqlite, &dir.path().join("control")).await;
  let control = Control::start_with(&storage, 0, 0, None);
  let (_edge, lines) = start_edge_lines(
    &control.api,
    Some(&storage.token("edge-join")),
    &dir.path().join("edge"),
    &["--tls-port", "0"],
  );
  let port: u16 = lines
    .last()
    .and_then(|l| {
      l.split_whitespace()
        .find_map(|w| w.strip_prefix("https://"))
    })
    .and_then(|a| a.trim_end_matches('/').rsplit_once(':'))
    .and_then(|(_, p)| p.parse().ok())
    .unwrap_or_else(|| panic!("no https address in {lines:?}"));
  assert_eq!(
    curl(&ca_path, "alpha.test", port, "--http2").0,
    35,
    "no certificate yet"
  );

  let (cert, key) = ca.issue(dir.path(), "alpha", "Alpha Pushed", &["alpha.test"]);
  let (cert, key) = (cert.to_str().expect("utf-8"), key.to_str().expect("utf-8"));
  let refused = certs(
    &control,
    &["add", "--host", "beta.test", "--cert", cert, "--key", key],
  );
  assert!(!refused.status.success());
  assert!(
    String::from_utf8_lossy(&refused.stderr).contains("not \"beta.test\""),
    "{}",
    String::from_utf8_lossy(&refused.stderr)
  );
  let added = certs(
    &control,
    &["add", "--host", "alpha.test", "--cert", cert, "--key", key],
  );
  assert!(
    added.status.success(),
    "{}",
    String::from_utf8_lossy(&added.stderr)
  );
  wait_for_curl(
    &ca_path,
    "alpha.test",
    port,
    "the pushed certificate",
    |seen| seen.0 == 0 && seen.2 == "CN = Alpha Pushed",
  );
  let listed = certs(&control, &["list"]);
  assert!(String::from_utf8_lossy(&listed.stdout).starts_with("alpha.test\t"));

  // At rest, the key is sealed: neither the database nor its WAL holds it.
  let key_pem = std::fs::read_to_string(key).expect("key");
  let key_body = key_pem.lines().nth(1).expect("a base64 line").to_owned();
  for file in ["control.db", "control.db-wal"] {
    let bytes = std::fs::read(dir.path().join("control").join(file)).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(&key_body), "{file} holds the key's bytes");
    assert!(
      !text.contains("PRIVATE KEY"),
      "{file} holds a PEM private key (the CA's?)"
    );
  }

  // A renewed certificate replaces it, on the edge, without a restart.
  let (cert, key) = ca.issue(dir.path(), "alpha2", "Alpha Renewed", &["alpha.test"]);
  let (cert, key) = (cert.to_str().expect("utf-8"), key.to_str().expect("utf-8"));
  let added = certs(
    &control,
    &["add", "--host", "alpha.test", "--cert", cert, "--key", key],
  );
  assert!(added.status.success());
  wait_for_curl(
    &ca_path,
    "alpha.test",
    port,
    "the renewed certificate",
    |seen| seen.2 == "CN = Alpha Renewed",
  );

  let removed = certs(&control, &["remove", "alpha.test"]);
  assert!(removed.status.success());
  wait_for_curl(&ca_path, "alpha.test", port, "removal", |seen| seen.0 == 35);
}
