//! HTTP/3 at the edge, with a real HTTP/3 client (quinn + h3): a GET, a
//! POST streamed both ways (each chunk echoed before the next is sent),
//! `alt-svc` on the HTTPS responses, and a graceful shutdown that lets a
//! request in flight finish.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};

use crate::cluster::Process;
use crate::tls::TestCa;
use crate::util::{metric, outpost};

/// `outpost edge --local` with five workers (`site` answers its URL,
/// `pipe` streams the request body back as it arrives, `echo` reads it
/// all then answers it, `endless` streams MiB after MiB for as long as
/// it is read, `slow` answers after 700 ms) and HTTPS for `alpha.test`; returns the process and the
/// HTTPS/HTTP3 port.
fn start_edge(dir: &Path, ca: &TestCa) -> (Process, u16) {
  let edge = start_edge_with(dir, ca, &[]);
  (edge.process, edge.https_port)
}

/// A running edge and its addresses.
pub(crate) struct Edge {
  pub(crate) process: Process,
  pub(crate) https_port: u16,
  pub(crate) http: String,
  pub(crate) metrics: Option<String>,
}

/// As [`start_edge`], with `extra` flags.
pub(crate) fn start_edge_with(dir: &Path, ca: &TestCa, extra: &[&str]) -> Edge {
  let workers = dir.join("workers");
  for (name, source) in [
    (
      "site",
      "export default { fetch(request) { return new Response(`${request.method} ${request.url}`); } };",
    ),
    (
      "pipe",
      "export default { fetch(request) { return new Response(request.body.pipeThrough(new TransformStream())); } };",
    ),
    (
      "echo",
      "export default { async fetch(request) { return new Response(await request.text()); } };",
    ),
    (
      "endless",
      "export default { fetch() { const chunk = new Uint8Array(1 << 20); return new Response(new ReadableStream({ pull(c) { c.enqueue(chunk); } })); } };",
    ),
    (
      "slow",
      "export default { async fetch() { await new Promise((r) => setTimeout(r, 700)); return new Response('finished'); } };",
    ),
  ] {
    std::fs::create_dir_all(workers.join(name)).expect("folder");
    std::fs::write(workers.join(name).join("worker.js"), source).expect("worker");
  }
  let (cert, key) = ca.issue(dir, "alpha", "Alpha Site", &["alpha.test"]);
  let mut child = outpost()
    .args(["edge", "--local"])
    .arg(&workers)
    .args(["--port", "0", "--tls-port", "0", "--threads", "1"])
    .args(extra)
    .arg("--tls-cert")
    .arg(cert)
    .arg("--tls-key")
    .arg(key)
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("outpost edge starts");
  let stdout = child.stdout.take().expect("stdout");
  let process = Process(child);
  let mut lines = BufReader::new(stdout).lines();
  let mut metrics = None;
  let line = loop {
    let line = lines.next().expect("a ready line").expect("text");
    if line.contains("metrics on") {
      metrics = line.split_whitespace().last().map(str::to_owned);
      continue;
    }
    break line;
  };
  assert!(line.contains("HTTP/3 on UDP port"), "{line}");
  let https_port = line
    .split_whitespace()
    .find_map(|w| w.strip_prefix("https://"))
    .and_then(|a| a.trim_end_matches('/').rsplit_once(':'))
    .and_then(|(_, p)| p.parse().ok())
    .unwrap_or_else(|| panic!("no https address in {line:?}"));
  let http = line
    .split_whitespace()
    .find(|w| w.starts_with("http://"))
    .expect("the http address")
    .trim_end_matches('/')
    .to_owned();
  Edge {
    process,
    https_port,
    http,
    metrics,
  }
}

/// Sends GET `path` over HTTP/3 and returns the status.
async fn h3_get(client: &mut SendRequest, path: &str) -> u16 {
  let mut stream = client
    .send_request(request("GET", path))
    .await
    .expect("send");
  stream.finish().await.expect("finish");
  let status = stream.recv_response().await.expect("a response").status();
  while stream.recv_data().await.expect("data").is_some() {}
  status.as_u16()
}

pub(crate) type SendRequest = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

/// An HTTP/3 connection to 127.0.0.1:`port` as `alpha.test`, trusting `ca`.
pub(crate) async fn connect(ca: &TestCa, port: u16) -> (SendRequest, quinn::Endpoint) {
  let mut roots = rustls::RootCertStore::empty();
  roots.add(ca.der()).expect("the CA certificate is accepted");
  let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
  let mut tls = rustls::ClientConfig::builder_with_provider(provider)
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("TLS 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth();
  tls.alpn_protocols = vec![b"h3".to_vec()];
  let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("QUIC TLS");
  let mut endpoint =
    quinn::Endpoint::client("127.0.0.1:0".parse().expect("address")).expect("endpoint");
  endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
  let address: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
  let connection = endpoint
    .connect(address, "alpha.test")
    .expect("connect")
    .await
    .expect("the QUIC handshake succeeds");
  let (mut driver, send_request) = h3::client::new(h3_quinn::Connection::new(connection))
    .await
    .expect("HTTP/3 set-up");
  tokio::spawn(async move {
    let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
  });
  (send_request, endpoint)
}

fn request(method: &str, path: &str) -> http::Request<()> {
  http::Request::builder()
    .method(method)
    .uri(format!("https://alpha.test{path}"))
    .body(())
    .expect("request")
}

#[tokio::test(flavor = "multi_thread")]
async fn get_and_a_post_streamed_both_ways() {
  let dir = tempfile::tempdir().expect("temp dir");
  let ca = TestCa::new();
  let (_edge, port) = start_edge(dir.path(), &ca);
  let (mut client, _endpoint) = connect(&ca, port).await;

  let mut stream = client
    .send_request(request("GET", "/site/page?q=1"))
    .await
    .expect("send");
  stream.finish().await.expect("finish");
  let response = stream.recv_response().await.expect("a response");
  assert_eq!(response.status(), 200);
  let mut body = Vec::new();
  while let Some(mut chunk) = stream.recv_data().await.expect("data") {
    body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
  }
  assert_eq!(
    String::from_utf8(body).expect("utf-8"),
    "GET https://alpha.test/site/page?q=1"
  );

  // Each chunk comes back before the next goes out: streamed both ways.
  let stream = client
    .send_request(request("POST", "/pipe/"))
    .await
    .expect("send");
  let (mut send, mut recv) = stream.split();
  let mut echoed = Vec::new();
  for n in 0..5u8 {
    let chunk = vec![b'a' + n; 16 * 1024];
    send
      .send_data(Bytes::from(chunk.clone()))
      .await
      .expect("send a chunk");
    if n == 0 {
      let response = recv.recv_response().await.expect("the head first");
      assert_eq!(response.status(), 200);
    }
    while echoed.len() < (usize::from(n) + 1) * chunk.len() {
      let mut data = tokio::time::timeout(Duration::from_secs(10), recv.recv_data())
        .await
        .expect("the echo arrives before the request ends")
        .expect("data")
        .expect("more data");
      echoed.extend_from_slice(&data.copy_to_bytes(data.remaining()));
    }
  }
  send.finish().await.expect("finish");
  while let Some(mut data) = recv.recv_data().await.expect("data") {
    echoed.extend_from_slice(&data.copy_to_bytes(data.remaining()));
  }
  let expected: Vec<u8> = (0..5u8).flat_map(|n| vec![b'a' + n; 16 * 1024]).collect();
  assert!(echoed == expected, "the body came back whole and in order");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_advertises_http3_and_shutdown_lets_requests_finish() {
  let dir = tempfile::tempdir().expect("temp dir");
  let ca = TestCa::new();
  let (edge, port) = start_edge(dir.path(), &ca);

  let ca_path = dir.path().join("ca.pem");
  std::fs::write(&ca_path, ca.pem()).expect("write");
  let curl = std::process::Command::new("curl")
    .args(["--silent", "--show-error", "--http2", "--head", "--cacert"])
    .arg(&ca_path)
    .args([
      "--resolve",
      &format!("alpha.test:{port}:127.0.0.1"),
      &format!("https://alpha.test:{port}/site/"),
    ])
    .output()
    .expect("curl runs");
  let head = String::from_utf8_lossy(&curl.stdout).to_lowercase();
  assert!(
    head.contains(&format!("alt-svc: h3=\":{port}\"; ma=86400")),
    "{head} {}",
    String::from_utf8_lossy(&curl.stderr)
  );

  let (mut client, _endpoint) = connect(&ca, port).await;
  let mut stream = client
    .send_request(request("GET", "/slow/"))
    .await
    .expect("send");
  stream.finish().await.expect("finish");
  tokio::time::sleep(Duration::from_millis(200)).await;
  // SIGTERM while the request runs: it still gets its answer.
  let status = std::process::Command::new("kill")
    .args(["-TERM", &edge.0.id().to_string()])
    .status()
    .expect("kill runs");
  assert!(status.success());
  let response = stream.recv_response().await.expect("a response");
  assert_eq!(response.status(), 200);
  let mut body = Vec::new();
  while let Some(mut chunk) = stream.recv_data().await.expect("data") {
    body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
  }
  assert_eq!(body, b"finished");
  drop(edge);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_by_protocol_and_status() {
  let dir = tempfile::tempdir().expect("temp dir");
  let ca = TestCa::new();
  let edge = start_edge_with(dir.path(), &ca, &["--admin-port", "0"]);
  let (mut client, _endpoint) = connect(&ca, edge.https_port).await;
  for _ in 0..3 {
    assert_eq!(h3_get(&mut client, "/site/").await, 200);
  }
  assert_eq!(h3_get(&mut client, "/nowhere/").await, 404);
  let plain = reqwest::Client::new();
  for _ in 0..2 {
    let response = plain
      .get(format!("{}/site/", edge.http))
      .send()
      .await
      .expect("answer");
    assert_eq!(response.status(), 200);
  }
  let ca_path = dir.path().join("ca.pem");
  std::fs::write(&ca_path, ca.pem()).expect("write");
  let port = edge.https_port;
  let curl = std::process::Command::new("curl")
    .args(["--silent", "--http2", "--cacert"])
    .arg(&ca_path)
    .args([
      "--resolve",
      &format!("alpha.test:{port}:127.0.0.1"),
      &format!("https://alpha.test:{port}/site/"),
    ])
    .output()
    .expect("curl runs");
  assert!(curl.status.success());

  let url = edge.metrics.expect("a metrics address");
  let text = plain
    .get(&url)
    .send()
    .await
    .expect("scrape")
    .text()
    .await
    .expect("text");
  let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
    metric(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
  };
  let requests = "outpost_requests_total";
  assert_eq!(
    value(requests, &[("protocol", "http3"), ("status", "2xx")]),
    3.0
  );
  assert_eq!(
    value(requests, &[("protocol", "http3"), ("status", "4xx")]),
    1.0,
    "{text}"
  );
  assert_eq!(
    value(requests, &[("protocol", "http1"), ("status", "2xx")]),
    2.0
  );
  assert_eq!(
    value(requests, &[("protocol", "http2"), ("status", "2xx")]),
    1.0
  );
  let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
    .expect("the Prometheus text format");
  let latency = scrape
    .samples
    .iter()
    .find(|s| s.metric == "outpost_request_duration_seconds")
    .expect("the latency histogram");
  match &latency.value {
    prometheus_parse::Value::Histogram(buckets) => {
      let total = buckets.last().expect("buckets").count;
      assert_eq!(total, 7.0, "every request is in the histogram");
    }
    other => panic!("not a histogram: {other:?}"),
  }
  assert!(value("outpost_live_isolates", &[]) >= 1.0);
  assert!(value("outpost_cold_starts_total", &[]) + value("outpost_warm_starts_total", &[]) >= 1.0);
}
