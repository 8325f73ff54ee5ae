//! Oversized heads get 431 and oversized bodies 413, and the server lives on.

use outpost_edge::ServerConfig;

use crate::util::{TestServer, TestServerOptions, fixture_entry, http1};

const SMALL_BODY_LIMIT: u64 = 1024;

async fn echo_with_small_body_limit() -> TestServer {
  let config = ServerConfig {
    max_body_bytes: SMALL_BODY_LIMIT,
    ..ServerConfig::default()
  };
  TestServer::start(
    &fixture_entry("echo"),
    TestServerOptions {
      config,
      ..Default::default()
    },
  )
  .await
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_get_431() {
  let server = TestServer::fixture("hello").await;
  let client = http1();
  let huge = "x".repeat(ServerConfig::default().max_header_bytes + 1024);
  let response = client
    .get(server.url("/"))
    .header("x-huge", huge)
    .send()
    .await
    .expect("request");
  assert_eq!(response.status(), 431);
  let response = http1()
    .get(server.url("/"))
    .send()
    .await
    .expect("the server still answers");
  assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn declared_oversized_body_gets_413() {
  let server = echo_with_small_body_limit().await;
  let body = vec![b'a'; SMALL_BODY_LIMIT as usize * 2];
  let response = http1()
    .post(server.url("/"))
    .body(body)
    .send()
    .await
    .expect("request");
  assert_eq!(response.status(), 413);
  let response = http1()
    .post(server.url("/"))
    .body("small")
    .send()
    .await
    .expect("request");
  assert_eq!(response.status(), 200);
  assert_eq!(response.text().await.expect("body"), "small");
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_oversized_body_gets_413() {
  let server = echo_with_small_body_limit().await;
  let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..4).map(|_| Ok(vec![b'b'; 512])).collect();
  let response = http1()
    .post(server.url("/"))
    .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
    .send()
    .await
    .expect("request");
  assert_eq!(response.status(), 413);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_host_gets_400() {
  use tokio::io::{AsyncReadExt, AsyncWriteExt};
  let server = TestServer::fixture("hello").await;
  let mut stream = tokio::net::TcpStream::connect(server.addr)
    .await
    .expect("connect");
  stream
    .write_all(b"GET / HTTP/1.1\r\nHost: not a host\r\nConnection: close\r\n\r\n")
    .await
    .expect("write");
  let mut answer = String::new();
  stream.read_to_string(&mut answer).await.expect("read");
  assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}
