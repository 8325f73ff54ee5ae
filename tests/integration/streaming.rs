//! Bodies streaming in and out.

use futures::StreamExt;

use crate::util::{TestServer, expected, get_text, http1, wait_for_body};

fn pattern(len: usize) -> Vec<u8> {
  (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

async fn echo_round_trip(client: reqwest::Client) {
  let exp = expected("echo");
  let len = exp["request"]["body_bytes"].as_u64().expect("body_bytes") as usize;
  let server = TestServer::fixture("echo").await;
  let body = pattern(len);
  // A streamed upload: chunked on HTTP/1.1, DATA frames on HTTP/2.
  let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
    body.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
  let response = client
    .post(server.url("/"))
    .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
    .send()
    .await
    .expect("upload succeeds");
  assert_eq!(
    response.status().as_u16(),
    exp["status"].as_u64().expect("status") as u16
  );
  let digest = response.headers()["x-sha256"]
    .to_str()
    .expect("ascii")
    .to_owned();
  let echoed = response.bytes().await.expect("body");
  assert_eq!(echoed.len(), body.len());
  assert!(echoed[..] == body[..], "echoed bytes differ");
  assert_eq!(digest.len(), 64, "x-sha256 is a hex SHA-256");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_mebibyte_post_is_echoed() {
  echo_round_trip(http1()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_mebibyte_post_is_echoed_over_h2c() {
  echo_round_trip(
    reqwest::Client::builder()
      .http2_prior_knowledge()
      .build()
      .expect("client"),
  )
  .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn first_chunk_arrives_before_the_stream_ends() {
  let exp = expected("stream");
  let server = TestServer::fixture("stream").await;
  let response = http1().get(server.url("/")).send().await.expect("request");
  assert_eq!(
    response.status().as_u16(),
    exp["status"].as_u64().expect("status") as u16
  );
  let mut body = response.bytes_stream();
  let first = body.next().await.expect("a first chunk").expect("chunk");
  // Had the server buffered the body, the first chunk would hold all of it.
  assert_eq!(
    &first[..],
    exp["first_chunk"].as_str().expect("first_chunk").as_bytes()
  );
  let mut all = first.to_vec();
  while let Some(chunk) = body.next().await {
    all.extend_from_slice(&chunk.expect("chunk"));
  }
  assert_eq!(
    String::from_utf8(all).expect("utf8"),
    exp["body"].as_str().expect("body")
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_leaving_mid_stream_cancels_the_workers_stream() {
  let exp = expected("disconnect");
  let server = TestServer::fixture("disconnect").await;
  let streaming = http1();
  let response = streaming
    .get(server.url(exp["request"]["path"].as_str().expect("path")))
    .send()
    .await
    .expect("request");
  let mut body = response.bytes_stream();
  let first = body.next().await.expect("a first chunk").expect("chunk");
  assert!(first.starts_with(exp["first_chunk"].as_str().expect("first_chunk").as_bytes()));
  let status = get_text(&http1(), &server.url("/status")).await;
  assert_eq!(
    status,
    exp["status_while_streaming"].as_str().expect("streaming")
  );

  // Dropping the body and its client closes the connection.
  drop(body);
  drop(streaming);
  let want = exp["status_after_disconnect"].as_str().expect("cancelled");
  wait_for_body(&http1(), &server.url("/status"), want).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn head_requests_get_headers_only_on_http1_and_h2c() {
  let server = TestServer::fixture("hello").await;
  let h2c = reqwest::Client::builder()
    .http2_prior_knowledge()
    .build()
    .expect("client");
  for (client, version) in [(http1(), "HTTP/1.1"), (h2c, "HTTP/2")] {
    let response = client
      .head(server.url("/"))
      .send()
      .await
      .unwrap_or_else(|e| panic!("{version}: the HEAD is answered: {e}"));
    assert_eq!(response.status(), 200, "{version}");
    let body = response.bytes().await.expect("no stream reset");
    assert!(body.is_empty(), "{version}: no body");
  }
}
