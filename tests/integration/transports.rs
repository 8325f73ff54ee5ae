//! One request pipeline for every transport: the same cases over HTTP/1.1
//! (raw bytes on a socket, so nothing is tidied on the way), HTTP/2
//! (cleartext, prior knowledge) and HTTP/3 (quinn + h3) give the same
//! status and body.

use std::io::{Read, Write};

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Empty, StreamBody, combinators::BoxBody};
use hyper::body::Frame;

use crate::http3::{connect, start_edge_with};
use crate::tls::TestCa;

/// What a case sends as its body.
#[derive(Clone, Copy)]
enum Payload {
  None,
  /// `n` bytes with a `content-length`.
  Declared(usize),
  /// `n` bytes with no length given: chunked on HTTP/1.1, plain DATA
  /// frames on HTTP/2 and HTTP/3.
  Streamed(usize),
}

/// One case: method, authority, path, extra headers, body; the status
/// and body wanted (`{scheme}` stands for the URL scheme the worker saw).
struct Case {
  name: &'static str,
  method: &'static str,
  authority: &'static str,
  path: &'static str,
  headers: Vec<(&'static str, String)>,
  payload: Payload,
  status: u16,
  body: String,
}

/// The edge under test takes bodies up to this many bytes...
const MAX_BODY: usize = 1024;
/// ...and request heads up to this many.
const MAX_HEADER: usize = 8192;

fn case(
  name: &'static str,
  method: &'static str,
  authority: &'static str,
  path: &'static str,
) -> Case {
  Case {
    name,
    method,
    authority,
    path,
    headers: Vec::new(),
    payload: Payload::None,
    status: 200,
    body: String::new(),
  }
}

fn cases() -> Vec<Case> {
  let too_large = "Request body too large.\n".to_owned();
  vec![
    Case {
      body: "GET {scheme}://alpha.test/site/page?q=1".to_owned(),
      ..case("routed GET", "GET", "alpha.test", "/site/page?q=1")
    },
    case(
      "HEAD keeps the head, drops the body",
      "HEAD",
      "alpha.test",
      "/site/",
    ),
    Case {
      body: "GET {scheme}://[::1]:8443/site/v6".to_owned(),
      ..case(
        "an IPv6 literal with a port",
        "GET",
        "[::1]:8443",
        "/site/v6",
      )
    },
    Case {
      body: "GET {scheme}://[::1]/site/v6".to_owned(),
      ..case("a bare IPv6 literal", "GET", "[::1]", "/site/v6")
    },
    Case {
      status: 404,
      body: "No worker is routed for host \"alpha.test\" or path \"/nothing-here/\".\n".to_owned(),
      ..case("no route", "GET", "alpha.test", "/nothing-here/")
    },
    Case {
      payload: Payload::Declared(MAX_BODY),
      body: "x".repeat(MAX_BODY),
      ..case(
        "a declared body at the limit",
        "POST",
        "alpha.test",
        "/pipe/",
      )
    },
    Case {
      payload: Payload::Streamed(MAX_BODY),
      body: "x".repeat(MAX_BODY),
      ..case(
        "a streamed body at the limit",
        "POST",
        "alpha.test",
        "/pipe/",
      )
    },
    Case {
      payload: Payload::Declared(2 * MAX_BODY),
      status: 413,
      body: too_large.clone(),
      ..case(
        "a declared body over the limit",
        "POST",
        "alpha.test",
        "/pipe/",
      )
    },
    Case {
      payload: Payload::Streamed(4 * MAX_BODY),
      status: 413,
      body: too_large,
      // `echo` reads it all before answering. (Were the answer already
      // streaming, as `pipe`'s is, its head would be out before the
      // overflow: the body is cut instead.)
      ..case(
        "a streamed body over the limit",
        "POST",
        "alpha.test",
        "/echo/",
      )
    },
    Case {
      headers: vec![("x-filler", "y".repeat(2 * MAX_HEADER))],
      status: 431,
      ..case(
        "a header section over the limit",
        "GET",
        "alpha.test",
        "/site/",
      )
    },
  ]
}

/// HTTP/1.1 by hand: the request as written, the status and body read.
fn http1(address: &str, case: &Case) -> (u16, String) {
  let mut stream = std::net::TcpStream::connect(address).expect("connect");
  stream
    .set_read_timeout(Some(std::time::Duration::from_secs(10)))
    .expect("timeout");
  let mut request = format!(
    "{} {} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
    case.method, case.path, case.authority
  );
  for (name, value) in &case.headers {
    request.push_str(&format!("{name}: {value}\r\n"));
  }
  match case.payload {
    Payload::None => request.push_str("\r\n"),
    Payload::Declared(n) => {
      request.push_str(&format!("content-length: {n}\r\n\r\n"));
      request.push_str(&"x".repeat(n));
    }
    Payload::Streamed(n) => {
      request.push_str("transfer-encoding: chunked\r\n\r\n");
      for _ in 0..n / 256 {
        request.push_str(&format!("100\r\n{}\r\n", "x".repeat(256)));
      }
      request.push_str("0\r\n\r\n");
    }
  }
  // The server may answer (and close) before reading all of it.
  let _ = stream.write_all(request.as_bytes());
  let mut answer = Vec::new();
  let _ = stream.read_to_end(&mut answer);
  parse_http1(&answer, case.method == "HEAD")
}

fn parse_http1(answer: &[u8], head_only: bool) -> (u16, String) {
  let text = String::from_utf8_lossy(answer);
  let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
  let status = head
    .split_whitespace()
    .nth(1)
    .and_then(|s| s.parse().ok())
    .unwrap_or(0);
  let chunked = head
    .to_ascii_lowercase()
    .contains("transfer-encoding: chunked");
  let body = if head_only {
    String::new()
  } else if chunked {
    // Chunk sizes and data, alternately.
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
      let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
      if size == 0 {
        break;
      }
      out.push_str(after.get(..size).unwrap_or(after));
      rest = after.get(size + 2..).unwrap_or("");
    }
    out
  } else {
    body.to_owned()
  };
  (status, body)
}

/// HTTP/2 with prior knowledge on a connection of its own, so the
/// `:authority` is the case's, whatever address the edge listens on.
async fn http2(address: &str, case: &Case) -> (u16, String) {
  let tcp = tokio::net::TcpStream::connect(address)
    .await
    .expect("connect");
  let io = hyper_util::rt::TokioIo::new(tcp);
  let (mut sender, connection) =
    hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
      .await
      .expect("HTTP/2 handshake");
  tokio::spawn(connection);
  let mut request = http::Request::builder()
    .method(case.method)
    .uri(format!("http://{}{}", case.authority, case.path));
  for (name, value) in &case.headers {
    request = request.header(*name, value);
  }
  let chunks = |n: usize| (0..n / 256).map(|_| Ok(Frame::data(Bytes::from("x".repeat(256)))));
  let body: BoxBody<Bytes, std::convert::Infallible> = match case.payload {
    Payload::None => Empty::new().boxed(),
    Payload::Declared(n) => {
      request = request.header("content-length", n);
      StreamBody::new(futures::stream::iter(chunks(n))).boxed()
    }
    Payload::Streamed(n) => StreamBody::new(futures::stream::iter(chunks(n))).boxed(),
  };
  let response = match sender
    .send_request(request.body(body).expect("request"))
    .await
  {
    Ok(response) => response,
    Err(err) => return (0, format!("HTTP/2 request failed: {err:?}")),
  };
  let status = response.status().as_u16();
  let body = response.into_body().collect().await.map(|b| b.to_bytes());
  (
    status,
    String::from_utf8_lossy(&body.unwrap_or_default()).into_owned(),
  )
}

async fn http3(client: &mut crate::http3::SendRequest, case: &Case) -> (u16, String) {
  let mut request = http::Request::builder()
    .method(case.method)
    .uri(format!("https://{}{}", case.authority, case.path));
  for (name, value) in &case.headers {
    request = request.header(*name, value);
  }
  let length = match case.payload {
    Payload::None => 0,
    Payload::Declared(n) => {
      request = request.header("content-length", n);
      n
    }
    Payload::Streamed(n) => n,
  };
  let mut stream = match client
    .send_request(request.body(()).expect("request"))
    .await
  {
    Ok(stream) => stream,
    Err(err) => return (0, format!("HTTP/3 request failed: {err:?}")),
  };
  // The server may answer (and stop reading) before all of it is sent.
  for _ in 0..length / 256 {
    if stream
      .send_data(bytes::Bytes::from("x".repeat(256)))
      .await
      .is_err()
    {
      break;
    }
  }
  let _ = stream.finish().await;
  let response = match stream.recv_response().await {
    Ok(response) => response,
    Err(err) => return (0, format!("HTTP/3 response failed: {err:?}")),
  };
  let mut body = Vec::new();
  while let Ok(Some(mut chunk)) = stream.recv_data().await {
    body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
  }
  (
    response.status().as_u16(),
    String::from_utf8_lossy(&body).into_owned(),
  )
}

/// The h3 client will not send a header section larger than the server's
/// SETTINGS_MAX_FIELD_SECTION_SIZE, so over HTTP/3 an oversize head is
/// refused before it leaves; that it names the edge's limit shows the
/// edge advertised it. (h3's server answers 431 to a client that ignores
/// the setting.)
fn refused_by_h3_client(transport: &str, case: &Case, status: u16, body: &str) -> bool {
  transport == "HTTP/3"
    && case.status == 431
    && status == 0
    && body.contains("HeaderTooBig")
    && body.contains(&format!("max_size: {MAX_HEADER}"))
}

/// A stuck transport reads as a wrong answer rather than a hung test.
async fn within(answer: impl std::future::Future<Output = (u16, String)>) -> (u16, String) {
  tokio::time::timeout(std::time::Duration::from_secs(10), answer)
    .await
    .unwrap_or((0, "no answer within 10 s".to_owned()))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_cases_answer_alike_over_http1_http2_and_http3() {
  let dir = tempfile::tempdir().expect("temp dir");
  let ca = TestCa::new();
  let (max_body, max_header) = (MAX_BODY.to_string(), MAX_HEADER.to_string());
  let limits = [
    "--max-body-bytes",
    &max_body,
    "--max-header-bytes",
    &max_header,
  ];
  let edge = start_edge_with(dir.path(), &ca, &limits);
  let address = edge.http.trim_start_matches("http://").to_owned();
  let (mut h3, _endpoint) = connect(&ca, edge.https_port).await;
  let mut wrong = Vec::new();
  for case in &cases() {
    let answers = [
      ("HTTP/1.1", "http", http1(&address, case)),
      ("HTTP/2", "http", within(http2(&address, case)).await),
      ("HTTP/3", "https", within(http3(&mut h3, case)).await),
    ];
    for (transport, scheme, (status, body)) in answers {
      let want = case.body.replace("{scheme}", scheme);
      if (status, body.as_str()) != (case.status, want.as_str())
        && !refused_by_h3_client(transport, case, status, &body)
      {
        wrong.push(format!(
          "{} over {transport}: {status} {body:?}, wanted {} {want:?}",
          case.name, case.status
        ));
      }
    }
  }
  assert!(wrong.is_empty(), "{}", wrong.join("\n"));

  // Only HTTP/1.1 can leave the authority out altogether.
  let mut stream = std::net::TcpStream::connect(&address).expect("connect");
  stream
    .write_all(b"GET /site/ HTTP/1.1\r\nconnection: close\r\n\r\n")
    .expect("write");
  let mut answer = Vec::new();
  let _ = stream.read_to_end(&mut answer);
  assert_eq!(
    parse_http1(&answer, false),
    (400, "Bad request: missing or invalid Host.\n".to_owned())
  );
}
