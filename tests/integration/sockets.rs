//! `connect()` from cloudflare:sockets and node:net against real servers on
//! loopback: plain TCP with half-close, TLS from the start and by
//! STARTTLS (trusted through OUTPOST_EXTRA_CA_CERTS), the address policy,
//! the per-request limit of open sockets and the subrequest count, and
//! PostgreSQL queried with the pg driver from npm, in dev and deployed.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::npm_projects::{control_and_edge, deploy_folder, npm_fixture};
use crate::tls::TestCa;
use crate::util::{
  DevProcess, TestServer, fixture_entry, fresh_postgres_database, http1, limits_allowing,
};

/// Echoes what each connection sends, after it half-closes, then closes.
async fn echo_server() -> u16 {
  let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
  let port = listener.local_addr().expect("addr").port();
  tokio::spawn(async move {
    while let Ok((mut stream, _)) = listener.accept().await {
      tokio::spawn(async move {
        let mut got = Vec::new();
        if stream.read_to_end(&mut got).await.is_ok() {
          let _ = stream.write_all(b"echo:").await;
          let _ = stream.write_all(&got).await;
        }
      });
    }
  });
  port
}

/// TLS for "localhost" from a test CA; returns the acceptor and the CA's
/// PEM file.
fn tls_acceptor(dir: &Path) -> (TlsAcceptor, std::path::PathBuf) {
  use rustls_pki_types::pem::PemObject;
  use rustls_pki_types::{CertificateDer, PrivateKeyDer};
  let ca = TestCa::new();
  let (cert, key) = ca.issue(dir, "localhost", "localhost", &["localhost"]);
  let ca_file = dir.join("ca.pem");
  std::fs::write(&ca_file, ca.pem()).expect("write CA");
  let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
    .expect("cert file")
    .map(|c| c.expect("cert"))
    .collect();
  let key = PrivateKeyDer::from_pem_file(&key).expect("key");
  let config = rustls::ServerConfig::builder_with_provider(Arc::new(
    rustls::crypto::aws_lc_rs::default_provider(),
  ))
  .with_safe_default_protocol_versions()
  .expect("versions")
  .with_no_client_auth()
  .with_single_cert(certs, key)
  .expect("server config");
  (TlsAcceptor::from(Arc::new(config)), ca_file)
}

/// Echoes over TLS, from the first byte (`starttls` false) or after a
/// plain "STARTTLS\n" answered "GO\n".
async fn tls_echo_server(acceptor: TlsAcceptor, starttls: bool) -> u16 {
  let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
  let port = listener.local_addr().expect("addr").port();
  tokio::spawn(async move {
    while let Ok((stream, _)) = listener.accept().await {
      let acceptor = acceptor.clone();
      tokio::spawn(async move {
        let mut stream = BufReader::new(stream);
        if starttls {
          let mut line = String::new();
          if stream.read_line(&mut line).await.is_err() || line != "STARTTLS\n" {
            return;
          }
          if stream.get_mut().write_all(b"GO\n").await.is_err() {
            return;
          }
        }
        let Ok(mut tls) = acceptor.accept(stream.into_inner()).await else {
          return;
        };
        let mut got = Vec::new();
        if tls.read_to_end(&mut got).await.is_ok() {
          let _ = tls.write_all(b"tls:").await;
          let _ = tls.write_all(&got).await;
          let _ = tls.shutdown().await;
        }
      });
    }
  });
  port
}

async fn ask(base: &str, path: &str) -> (u16, Value) {
  let response = http1()
    .get(format!("{base}{path}"))
    .send()
    .await
    .expect("request");
  let status = response.status().as_u16();
  let text = response.text().await.expect("body");
  (
    status,
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
  )
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_talks_tcp_under_the_policy_and_limits() {
  let port = echo_server().await;
  let allowed = TestServer::start(
    &fixture_entry("sockets"),
    crate::util::TestServerOptions {
      limits: outpost_runtime::WorkerLimits {
        max_subrequests: 8,
        ..limits_allowing(&["127.0.0.0/8"])
      },
      ..Default::default()
    },
  )
  .await;
  let base = allowed.url("");
  let base = base.trim_end_matches('/');

  let (status, answer) = ask(base, &format!("/echo?port={port}")).await;
  assert_eq!(status, 200, "{answer}");
  assert_eq!(
    answer,
    json!({ "reply": "echo:hello over tcp", "remoteAddress": true })
  );

  // workerd's nodejs-compat-net sample, in a request.
  let (status, answer) = ask(base, &format!("/net?port={port}")).await;
  assert_eq!(status, 200, "{answer}");
  assert_eq!(
    answer,
    json!({
      "data": "echo:pong1pong2",
      "events": ["connect", "ready", "written 1", "written 2"],
      "read": 15,
      "written": 10,
      "family": "IPv4",
    })
  );

  // Six open at once; the seventh waits for one to close.
  let (status, answer) = ask(base, &format!("/limit?port={port}")).await;
  assert_eq!(status, 200, "{answer}");
  assert_eq!(answer, json!({ "waited": true, "openedAfterClose": true }));

  // Each connect() is a subrequest: eight here, the ninth refused.
  let (status, answer) = ask(base, &format!("/many?port={port}")).await;
  assert_eq!(status, 200, "{answer}");
  assert_eq!(answer["opened"], json!([0, 1, 2, 3, 4, 5, 6, 7]));
  assert!(
    answer["error"]
      .as_str()
      .is_some_and(|e| e.contains("Too many subrequests")),
    "{answer}"
  );

  // Without the allow-list entry, loopback is refused, and says why.
  let refused = TestServer::start(&fixture_entry("sockets"), Default::default()).await;
  let base = refused.url("");
  let (status, answer) = ask(base.trim_end_matches('/'), &format!("/echo?port={port}")).await;
  assert_eq!(status, 500, "{answer}");
  let error = answer["error"].as_str().expect("an error");
  assert!(
    error.contains(&format!("connect() to 127.0.0.1:{port} refused"))
      && error.contains("loopback address")
      && error.contains("allow-list"),
    "{error}"
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_speaks_tls_and_starttls_to_a_rustls_server() {
  let dir = tempfile::tempdir().expect("temp dir");
  let (acceptor, ca_file) = tls_acceptor(dir.path());
  let tls_port = tls_echo_server(acceptor.clone(), false).await;
  let starttls_port = tls_echo_server(acceptor, true).await;
  let worker = fixture_entry("sockets");
  let folder = worker.parent().expect("fixture folder");
  let ca = ca_file.to_str().expect("utf-8");
  let dev =
    DevProcess::start_with_env(folder, &["worker.js"], &[("OUTPOST_EXTRA_CA_CERTS", ca)]).await;
  let base = dev.url.trim_end_matches('/');

  let (status, answer) = ask(
    base,
    &format!("/echo?port={tls_port}&host=localhost&tls=on"),
  )
  .await;
  assert_eq!(status, 200, "{answer}");
  assert_eq!(answer["reply"], "tls:hello over tcp");

  let (status, answer) = ask(base, &format!("/starttls?port={starttls_port}")).await;
  assert_eq!(status, 200, "{answer}");
  assert_eq!(
    answer,
    json!({ "go": "GO\n", "reply": "tls:secret", "oldUpgraded": true, "secure": "on", "again": "TypeError" })
  );

  // A certificate the worker's trust does not include fails the handshake.
  drop(dev);
  let untrusting = DevProcess::start(folder, &["worker.js"]).await;
  let (status, answer) = ask(
    untrusting.url.trim_end_matches('/'),
    &format!("/echo?port={tls_port}&host=localhost&tls=on"),
  )
  .await;
  assert_eq!(status, 500, "{answer}");
  assert!(
    answer["error"]
      .as_str()
      .is_some_and(|e| e.contains("TLS handshake")),
    "{answer}"
  );
}

/// The pg-worker fixture with `DATABASE_URL`, in `[vars]` (for deploying)
/// and `.dev.vars`, and `allow` as its `[outbound] allow` in outpost.toml.
fn pg_project(database: &str, allow: Option<&str>) -> tempfile::TempDir {
  let project = npm_fixture("pg-worker");
  std::fs::write(
    project.path().join(".dev.vars"),
    format!("DATABASE_URL={database}\n"),
  )
  .expect(".dev.vars");
  let wrangler = project.path().join("wrangler.toml");
  let mut config = std::fs::read_to_string(&wrangler).expect("wrangler.toml");
  config.push_str(&format!("\n[vars]\nDATABASE_URL = \"{database}\"\n"));
  std::fs::write(&wrangler, config).expect("wrangler.toml");
  if let Some(allow) = allow {
    std::fs::write(
      project.path().join("outpost.toml"),
      format!("[outbound]\nallow = [\"{allow}\"]\n"),
    )
    .expect("outpost.toml");
  }
  project
}

async fn visit(client: &reqwest::Client, url: &str, host: Option<&str>) -> (u16, Value) {
  let mut request = client.get(url);
  if let Some(host) = host {
    request = request.header("host", host);
  }
  let response = request.send().await.expect("request");
  let status = response.status().as_u16();
  let text = response.text().await.expect("body");
  (
    status,
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
  )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_queries_postgresql_with_pg_from_npm() {
  let database = fresh_postgres_database().await;
  let client = http1();

  // outpost dev lets a worker reach the machine it runs on.
  let project = pg_project(&database, None);
  let dev = DevProcess::start(project.path(), &[]).await;
  for count in 1..=2 {
    let (status, answer) = visit(&client, &format!("{}dev", dev.url), None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
      answer,
      json!({ "path": "/dev", "count": count, "server": true })
    );
  }
  drop(dev);

  // Deployed, loopback is refused until the project's allow-list opens it.
  let data = tempfile::tempdir().expect("temp dir");
  let (control, _edge, edge_url) = control_and_edge(data.path());
  let host = Some("pg-worker.localhost");
  deploy_folder(&control, project.path());
  let (status, answer) = visit(&client, &format!("{edge_url}/edge"), host).await;
  assert_eq!(status, 500, "{answer}");
  let error = answer["error"].as_str().expect("an error");
  assert!(
    error.contains("refused") && error.contains("loopback address"),
    "{error}"
  );

  let allowed = pg_project(&database, Some("127.0.0.1"));
  deploy_folder(&control, allowed.path());
  let mut last = (0, Value::Null);
  for _ in 0..50 {
    last = visit(&client, &format!("{edge_url}/edge"), host).await;
    if last.0 == 200 {
      break;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
  }
  assert_eq!(
    last,
    (200, json!({ "path": "/edge", "count": 1, "server": true }))
  );
}
