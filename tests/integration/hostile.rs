//! Hostile clients against a real edge (`outpost edge --local`), each
//! checked for what it must not do to everyone else: a slowloris capped
//! and cut off, silent connections closed, request smuggling refused,
//! HTTP/2 rapid-reset and CONTINUATION floods ended, and a client that
//! never reads an endless response held to bounded memory. The figures
//! are in docs/reliability.md.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::http3::{Edge, start_edge_with};
use crate::tls::TestCa;
use crate::util::metric;

fn address(edge: &Edge) -> std::net::SocketAddr {
  let address = edge.http.trim_start_matches("http://");
  address.parse().expect("the edge's address")
}

/// A connection from `source` (any 127.0.0.0/8 address is loopback, so
/// tests can play several clients).
async fn connect_from(source: [u8; 4], to: std::net::SocketAddr) -> TcpStream {
  let socket = TcpSocket::new_v4().expect("socket");
  socket
    .bind((std::net::Ipv4Addr::from(source), 0).into())
    .expect("bind");
  socket.connect(to).await.expect("connect")
}

/// Reads until the server closes the connection (or resets it); `None` if
/// it is still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
  let mut answer = Vec::new();
  let read = tokio::time::timeout(limit, async {
    let mut buffer = [0u8; 4096];
    loop {
      match stream.read(&mut buffer).await {
        Ok(0) | Err(_) => return,
        Ok(n) => answer.extend_from_slice(&buffer[..n]),
      }
    }
  })
  .await;
  read.ok().map(|()| answer)
}

async fn scrape(edge: &Edge) -> String {
  let url = edge.metrics.as_ref().expect("a metrics address");
  reqwest::get(url)
    .await
    .expect("metrics")
    .text()
    .await
    .expect("text")
}

/// The median time of 20 fresh requests, each answered 200.
async fn median_get_ms(edge: &Edge) -> f64 {
  let mut times = Vec::new();
  for _ in 0..20 {
    let started = std::time::Instant::now();
    assert_eq!(plain_get(edge).await, 200);
    times.push(started.elapsed().as_secs_f64() * 1000.0);
  }
  times.sort_by(f64::total_cmp);
  times[times.len() / 2]
}

async fn plain_get(edge: &Edge) -> u16 {
  // A fresh client each time: its connection is new, so it must be
  // admitted past whatever the attacker holds.
  let client = reqwest::Client::new();
  let response = client
    .get(format!("{}/site/", edge.http))
    .send()
    .await
    .expect("a normal request is answered");
  response.status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slowloris_is_capped_and_cut_off_while_others_are_served() {
  let dir = tempfile::tempdir().expect("temp dir");
  let ca = TestCa::new();
  let flags = [
    "--admin-port",
    "0",
    "--header-read-timeout-secs",
    "2",
    "--max-connections-per-ip",
    "40",
  ];
  let edge = start_edge_with(dir.path(), &ca, &flags);
  let to = address(&edge);
  let before = median_get_ms(&edge).await;

  // 200 connections from one client, each trickling a header byte at a
  // time and never finishing its head.
  let mut attackers = tokio::task::JoinSet::new();
  for _ in 0..200 {
    let mut stream = connect_from([127, 0, 0, 2], to).await;
    attackers.spawn(async move {
      let _ = stream
        .write_all(b"GET /site/ HTTP/1.1\r\nhost: alpha.test\r\nx-slow: ")
        .await;
      let started = std::time::Instant::now();
      let mut tick = tokio::time::interval(Duration::from_millis(250));
      let mut byte = [0u8; 1];
      loop {
        tokio::select! {
          _ = tick.tick() => {
            if stream.write_all(b"a").await.is_err() {
              break;
            }
          }
          read = stream.read(&mut byte) => match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
          },
        }
        if started.elapsed() > Duration::from_secs(30) {
          return false; // never cut off
        }
      }
      true
    });
  }

  // Everyone else is still served, while the attack is on. (The times
  // are reported, not judged: this machine is shared.)
  let during = median_get_ms(&edge).await;
  eprintln!("slowloris: a fresh request's median {before:.2} ms before, {during:.2} ms during");
  let text = scrape(&edge).await;
  let refused = metric(&text, "outpost_connections_refused_total", &[]).unwrap_or(0.0);
  eprintln!("slowloris: {refused} of 200 connections refused at the per-IP cap");
  assert!(
    refused >= 160.0,
    "only {refused} of the 200 connections were refused at the per-IP cap of 40"
  );

  // Every attacking connection ends: refused at once, or cut off by the
  // header-read timeout.
  let mut cut_off = 0;
  while let Some(ended) = attackers.join_next().await {
    cut_off += usize::from(ended.expect("attacker task"));
  }
  assert_eq!(cut_off, 200, "some slow connections were never closed");
  assert_eq!(plain_get(&edge).await, 200);
  let text = scrape(&edge).await;
  let open = metric(&text, "outpost_connections_open", &[]).unwrap_or(f64::MAX);
  assert!(
    open < 40.0,
    "{open} connections still open after the attack"
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_that_never_send_a_request_are_closed() {
  let dir = tempfile::tempdir().expect("temp dir");
  let ca = TestCa::new();
  let edge = start_edge_with(dir.path(), &ca, &["--header-read-timeout-secs", "1"]);
  let to = address(&edge);

  // Not a byte: closed before hyper has even seen which HTTP it is.
  let mut silent = TcpStream::connect(to).await.expect("connect");
  assert!(
    closed_within(&mut silent, Duration::from_secs(10))
      .await
      .is_some(),
    "a silent connection stayed open"
  );

  // An HTTP/1.1 keep-alive connection, idle after one request.
  let mut idle = TcpStream::connect(to).await.expect("connect");
  idle
    .write_all(b"GET /site/ HTTP/1.1\r\nhost: alpha.test\r\n\r\n")
    .await
    .expect("write");
  let answer = closed_within(&mut idle, Duration::from_secs(10))
    .await
    .expect("an idle keep-alive connection stayed open");
  assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");

  // HTTP/2 that opens, settles its settings and sends no request: a
  // GOAWAY, then the end.
  let io = hyper_util::rt::TokioIo::new(TcpStream::connect(to).await.expect("connect"));
  let (_sender, connection) = hyper::client::conn::http2::handshake::<
    _,
    _,
    http_body_util::Empty<bytes::Bytes>,
  >(hyper_util::rt::TokioExecutor::new(), io)
  .await
  .expect("HTTP/2 handshake");
  tokio::time::timeout(Duration::from_secs(10), connection)
    .await
    .expect("an idle HTTP/2 connection stayed open")
    .expect("a clean close");
}

/// Request-smuggling shapes: each is refused (400) or read one way only,
/// and whatever follows the first request on the wire never runs as a
/// second one.
#[tokio::test(flavor = "multi_thread")]
async fn request_smuggling_attempts_are_refused() {
  let dir = tempfile::tempdir().expect("temp dir");
  let ca = TestCa::new();
  let edge = start_edge_with(dir.path(), &ca, &[]);
  let to = address(&edge);
  let smuggled = "GET /smuggled/ HTTP/1.1\r\nhost: alpha.test\r\n\r\n";
  let cases: [(&str, String, &str); 5] = [
    (
      // Chunked wins (the body is empty); the connection is closed after
      // the answer, so the rest is never read as a request.
      "Content-Length with Transfer-Encoding",
      format!(
        "POST /echo/ HTTP/1.1\r\nhost: alpha.test\r\ncontent-length: {}\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}",
        5 + smuggled.len()
      ),
      "HTTP/1.1 200",
    ),
    (
      "two different Content-Lengths",
      format!(
        "POST /echo/ HTTP/1.1\r\nhost: alpha.test\r\ncontent-length: 0\r\ncontent-length: {}\r\n\r\n{smuggled}",
        smuggled.len()
      ),
      "HTTP/1.1 400",
    ),
    (
      "an obs-folded header",
      format!("GET /site/ HTTP/1.1\r\nhost: alpha.test\r\nx-folded: a\r\n b\r\n\r\n{smuggled}"),
      "HTTP/1.1 400",
    ),
    (
      "a Transfer-Encoding other than chunked",
      format!(
        "POST /echo/ HTTP/1.1\r\nhost: alpha.test\r\ntransfer-encoding: chunked, identity\r\n\r\n0\r\n\r\n{smuggled}"
      ),
      "HTTP/1.1 400",
    ),
    (
      "Transfer-Encoding on HTTP/1.0",
      format!(
        "POST /echo/ HTTP/1.0\r\nhost: alpha.test\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"
      ),
      "HTTP/1.1 400",
    ),
  ];
  for (name, request, status) in cases {
    let mut stream = TcpStream::connect(to).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let answer = closed_within(&mut stream, Duration::from_secs(10))
      .await
      .unwrap_or_else(|| panic!("{name}: the connection stayed open"));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with(status), "{name}: {answer}");
    assert_eq!(
      answer.matches("HTTP/1.1 ").count(),
      1,
      "{name}: the smuggled request was answered too: {answer}"
    );
  }
  assert_eq!(plain_get(&edge).await, 200);
}

/// One HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
  let length = u32::try_from(payload.len()).expect("a small frame");
  let mut out = length.to_be_bytes()[1..].to_vec();
  out.extend_from_slice(&[kind, flags]);
  out.extend_from_slice(&stream.to_be_bytes());
  out.extend_from_slice(payload);
  out
}

const DATA_END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const CANCEL: u32 = 0x8;

/// The client preface and an empty SETTINGS.
fn h2_preface() -> Vec<u8> {
  let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
  out.extend(frame(SETTINGS, 0, 0, &[]));
  out
}

/// HPACK for GET http://alpha.test/site/ from the static table: `:method
/// GET`, `:scheme http`, then `:path` and `:authority` as literals with
/// indexed names.
fn get_site_block() -> Vec<u8> {
  let mut block = vec![0x82, 0x86, 0x04, 6];
  block.extend_from_slice(b"/site/");
  block.extend_from_slice(&[0x01, 10]);
  block.extend_from_slice(b"alpha.test");
  block
}

/// The frames a server sent: (type, flags, stream, payload).
fn frames_in(mut bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
  let mut frames = Vec::new();
  while bytes.len() >= 9 {
    let length = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
    let stream = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff;
    let Some(payload) = bytes.get(9..9 + length) else {
      break;
    };
    frames.push((bytes[3], bytes[4], stream, payload.to_vec()));
    bytes = &bytes[9 + length..];
  }
  frames
}

/// The error code of the server's GOAWAY, if it sent one.
fn goaway_code(answer: &[u8]) -> Option<u32> {
  frames_in(answer)
    .into_iter()
    .find(|(kind, ..)| *kind == GOAWAY)
    .and_then(|(.., payload)| {
      payload
        .get(4..8)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    })
}

/// HTTP/2 rapid reset (CVE-2023-44487): streams opened and cancelled at
/// once, thousands at a time. The server must end the connection rather
/// than run a request for each, and others must not notice.
#[tokio::test(flavor = "multi_thread")]
async fn an_http2_rapid_reset_flood_is_ended() {
  let dir = tempfile::tempdir().expect("temp dir");
  let ca = TestCa::new();
  let edge = start_edge_with(dir.path(), &ca, &["--admin-port", "0"]);
  let mut stream = TcpStream::connect(address(&edge)).await.expect("connect");
  let mut flood = h2_preface();
  let block = get_site_block();
  let pairs = 5_000u32;
  for n in 0..pairs {
    let id = 2 * n + 1;
    flood.extend(frame(HEADERS, END_HEADERS | DATA_END_STREAM, id, &block));
    flood.extend(frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
  }
  // The server may hang up before it has all of it.
  let _ = stream.write_all(&flood).await;
  let answer = closed_within(&mut stream, Duration::from_secs(10))
    .await
    .expect("the flooding connection stayed open");
  const ENHANCE_YOUR_CALM: u32 = 0xb;
  assert_eq!(goaway_code(&answer), Some(ENHANCE_YOUR_CALM));

  let text = scrape(&edge).await;
  let answered = metric(
    &text,
    "outpost_requests_total",
    &[("protocol", "h2"), ("status", "2xx")],
  )
  .unwrap_or(0.0);
  eprintln!(
    "rapid reset: GOAWAY {:?} after {answered} of {pairs} streams ran",
    goaway_code(&answer)
  );
  assert!(
    answered < f64::from(pairs) / 10.0,
    "{answered} of {pairs} reset streams still ran"
  );
  assert_eq!(plain_get(&edge).await, 200);
}

/// A header block that never ends: CONTINUATION frames without
/// END_HEADERS, far past the head limit. The server must stop buffering
/// and end the connection.
#[tokio::test(flavor = "multi_thread")]
async fn an_http2_continuation_flood_is_ended() {
  let dir = tempfile::tempdir().expect("temp dir");
  let ca = TestCa::new();
  let edge = start_edge_with(dir.path(), &ca, &["--max-header-bytes", "16384"]);
  let mut stream = TcpStream::connect(address(&edge)).await.expect("connect");
  let mut flood = h2_preface();
  flood.extend(frame(HEADERS, DATA_END_STREAM, 1, &get_site_block()));
  // `x-c: <1000 bytes>`, a literal with a new name, again and again.
  let mut field = vec![0x00, 3];
  field.extend_from_slice(b"x-c");
  field.extend_from_slice(&[0x7f, 0xe9, 0x06]); // 1000, HPACK's integer
  field.extend(std::iter::repeat_n(b'v', 1000));
  let continuation = frame(CONTINUATION, 0, 1, &field);
  let (mut reader, writer) = stream.split();
  let mut writer = tokio::io::BufWriter::new(writer);
  let _ = writer.write_all(&flood).await;
  let mut sent = 0usize;
  let write = async {
    // Up to 100 MB; the server should hang up long before.
    for _ in 0..100_000 {
      if writer.write_all(&continuation).await.is_err() {
        break;
      }
      sent += continuation.len();
    }
    let _ = writer.flush().await;
  };
  let mut answer = Vec::new();
  let read = async {
    let mut buffer = [0u8; 4096];
    loop {
      match reader.read(&mut buffer).await {
        Ok(0) | Err(_) => break,
        Ok(n) => answer.extend_from_slice(&buffer[..n]),
      }
    }
  };
  let ended = tokio::time::timeout(Duration::from_secs(20), async {
    tokio::join!(write, read);
  })
  .await;
  assert!(ended.is_ok(), "the connection stayed open");
  eprintln!(
    "CONTINUATION flood: {sent} bytes written before the end, GOAWAY {:?}",
    goaway_code(&answer)
  );
  assert!(
    sent < 50_000_000,
    "the server took {sent} bytes of one header block"
  );
  assert!(
    goaway_code(&answer).is_some() || answer.is_empty(),
    "{answer:?}"
  );
  drop(stream);
  assert_eq!(plain_get(&edge).await, 200);
}

/// The edge's resident memory, in MiB.
fn rss_mib(pid: u32) -> u64 {
  let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the edge's status");
  status
    .lines()
    .find_map(|line| line.strip_prefix("VmRSS:"))
    .and_then(|rest| rest.split_whitespace().next())
    .and_then(|kib| kib.parse::<u64>().ok())
    .map_or(0, |kib| kib / 1024)
}

/// A client that asks for an endless response and never reads: the
/// worker's stream is pulled only as the socket drains, so the edge's
/// memory stays flat while it waits.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_reads_holds_the_edge_to_bounded_memory() {
  let dir = tempfile::tempdir().expect("temp dir");
  let ca = TestCa::new();
  let edge = start_edge_with(dir.path(), &ca, &[]);
  let pid = edge.process.0.id();
  assert_eq!(plain_get(&edge).await, 200);
  let before = rss_mib(pid);
  let mut stalled = Vec::new();
  for _ in 0..4 {
    let mut stream = TcpStream::connect(address(&edge)).await.expect("connect");
    stream
      .write_all(b"GET /endless/ HTTP/1.1\r\nhost: alpha.test\r\n\r\n")
      .await
      .expect("write");
    stalled.push(stream);
  }
  let mut peak = before;
  for _ in 0..10 {
    tokio::time::sleep(Duration::from_millis(500)).await;
    peak = peak.max(rss_mib(pid));
  }
  eprintln!("never-reading clients: RSS {before} MiB before, {peak} MiB at most over 5 s");
  // Each stalled response may fill the socket buffers and a few chunks in
  // flight; an unbounded one would be gigabytes by now.
  assert!(
    peak < before + 192,
    "memory grew from {before} MiB to {peak} MiB for 4 stalled readers"
  );
  assert_eq!(plain_get(&edge).await, 200);
  drop(stalled);
}
