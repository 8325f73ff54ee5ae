//! A closed-loop load generator for HTTP/2 and HTTP/3 over TLS, so the two
//! are measured with the same client (wrk speaks only HTTP/1.1).
//!
//! ```sh
//! cargo run --release -p outpost-edge --example load -- \
//!   --proto h3 --addr 127.0.0.1:8443 --host hello.localhost --path /hello/ \
//!   --ca ca.pem --conns 4 --streams 8 --seconds 5
//! ```
//!
//! Each connection runs `--streams` requests at a time, each starting as
//! the last finishes, for `--seconds`. Prints requests/s and the p50 and
//! p99 latency (request sent to body read).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Empty};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

struct Options {
  proto: String,
  addr: SocketAddr,
  host: String,
  path: String,
  ca: String,
  conns: usize,
  streams: usize,
  seconds: u64,
}

fn options() -> Options {
  let mut args = std::env::args().skip(1);
  let mut options = Options {
    proto: "h3".into(),
    addr: "127.0.0.1:8443".parse().expect("a default address"),
    host: "localhost".into(),
    path: "/".into(),
    ca: "ca.pem".into(),
    conns: 4,
    streams: 8,
    seconds: 5,
  };
  while let Some(flag) = args.next() {
    let value = args
      .next()
      .unwrap_or_else(|| panic!("{flag} needs a value"));
    match flag.as_str() {
      "--proto" => options.proto = value,
      "--addr" => options.addr = value.parse().expect("--addr HOST:PORT"),
      "--host" => options.host = value,
      "--path" => options.path = value,
      "--ca" => options.ca = value,
      "--conns" => options.conns = value.parse().expect("--conns N"),
      "--streams" => options.streams = value.parse().expect("--streams N"),
      "--seconds" => options.seconds = value.parse().expect("--seconds N"),
      other => panic!("unknown flag {other}"),
    }
  }
  options
}

fn tls_config(ca: &str, alpn: &[u8]) -> rustls::ClientConfig {
  let mut roots = rustls::RootCertStore::empty();
  for cert in CertificateDer::pem_file_iter(ca).expect("the CA file") {
    roots
      .add(cert.expect("a CA certificate"))
      .expect("a usable CA");
  }
  let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
  let mut config = rustls::ClientConfig::builder_with_provider(provider)
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
  config.alpn_protocols = vec![alpn.to_vec()];
  config
}

/// Runs one connection's streams until `until`; returns their latencies.
async fn h3_connection(options: Arc<Options>, until: Instant) -> Vec<Duration> {
  let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls_config(&options.ca, b"h3"))
    .expect("QUIC TLS");
  let mut endpoint =
    quinn::Endpoint::client("127.0.0.1:0".parse().expect("address")).expect("endpoint");
  endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
  let connection = endpoint
    .connect(options.addr, &options.host)
    .expect("connect")
    .await
    .expect("QUIC handshake");
  let (mut driver, sender) = h3::client::new(h3_quinn::Connection::new(connection))
    .await
    .expect("HTTP/3");
  tokio::spawn(async move {
    let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
  });
  let mut tasks = tokio::task::JoinSet::new();
  for _ in 0..options.streams {
    let (mut sender, options) = (sender.clone(), options.clone());
    tasks.spawn(async move {
      let mut latencies = Vec::new();
      let uri = format!("https://{}{}", options.host, options.path);
      while Instant::now() < until {
        let started = Instant::now();
        let request = http::Request::get(&uri).body(()).expect("request");
        let mut stream = sender.send_request(request).await.expect("send");
        stream.finish().await.expect("finish");
        stream.recv_response().await.expect("response");
        while let Some(mut chunk) = stream.recv_data().await.expect("body") {
          chunk.advance(chunk.remaining());
        }
        latencies.push(started.elapsed());
      }
      latencies
    });
  }
  let mut all = Vec::new();
  while let Some(latencies) = tasks.join_next().await {
    all.extend(latencies.expect("a stream task"));
  }
  all
}

/// As [`h3_connection`], over HTTP/2 on TLS.
async fn h2_connection(options: Arc<Options>, until: Instant) -> Vec<Duration> {
  let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(&options.ca, b"h2")));
  let tcp = tokio::net::TcpStream::connect(options.addr)
    .await
    .expect("TCP");
  tcp.set_nodelay(true).expect("nodelay");
  let name = rustls_pki_types::ServerName::try_from(options.host.clone()).expect("a host name");
  let tls = connector.connect(name, tcp).await.expect("TLS handshake");
  let (sender, connection) = hyper::client::conn::http2::handshake(
    hyper_util::rt::TokioExecutor::new(),
    hyper_util::rt::TokioIo::new(tls),
  )
  .await
  .expect("HTTP/2");
  tokio::spawn(connection);
  let mut tasks = tokio::task::JoinSet::new();
  for _ in 0..options.streams {
    let (mut sender, options) = (sender.clone(), options.clone());
    tasks.spawn(async move {
      let mut latencies = Vec::new();
      let uri = format!("https://{}{}", options.host, options.path);
      while Instant::now() < until {
        let started = Instant::now();
        let request = http::Request::get(&uri)
          .body(Empty::<Bytes>::new())
          .expect("request");
        let response = sender.send_request(request).await.expect("send");
        response.into_body().collect().await.expect("body");
        latencies.push(started.elapsed());
      }
      latencies
    });
  }
  let mut all = Vec::new();
  while let Some(latencies) = tasks.join_next().await {
    all.extend(latencies.expect("a stream task"));
  }
  all
}

#[tokio::main]
async fn main() {
  let options = Arc::new(options());
  let started = Instant::now();
  let until = started + Duration::from_secs(options.seconds);
  let mut connections = tokio::task::JoinSet::new();
  for _ in 0..options.conns {
    let options = options.clone();
    match options.proto.as_str() {
      "h3" => connections.spawn(h3_connection(options, until)),
      "h2" => connections.spawn(h2_connection(options, until)),
      other => panic!("--proto h2 or h3, not {other}"),
    };
  }
  let mut latencies = Vec::new();
  while let Some(done) = connections.join_next().await {
    latencies.extend(done.expect("a connection task"));
  }
  let elapsed = started.elapsed().as_secs_f64();
  latencies.sort();
  let at = |q: f64| {
    latencies
      .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
      .copied()
      .unwrap_or_default()
  };
  println!(
    "{} requests={} rps={:.0} p50_us={} p99_us={}",
    options.proto,
    latencies.len(),
    latencies.len() as f64 / elapsed,
    at(0.5).as_micros(),
    at(0.99).as_micros()
  );
}
