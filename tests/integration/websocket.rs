//! WebSockets: a real client (tokio-tungstenite) talks to a worker's
//! WebSocketPair through the edge, and a worker connects out to a real
//! WebSocket server under its address policy.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::util::{TestServer, get_text, http1, limits_allowing};

async fn worker_allowing(allow: &[&str]) -> TestServer {
  TestServer::fixture_with("websocket", limits_allowing(allow)).await
}

/// The next message, within a generous deadline.
async fn next<S>(socket: &mut S) -> Message
where
  S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
  tokio::time::timeout(Duration::from_secs(10), socket.next())
    .await
    .expect("a message in time")
    .expect("the socket is open")
    .expect("a valid frame")
}

#[tokio::test]
async fn a_real_client_talks_to_a_worker_websocket() {
  let server = worker_allowing(&[]).await;
  let url = format!("ws://{}/echo", server.addr);
  let (mut socket, response) = tokio_tungstenite::connect_async(&url)
    .await
    .expect("the upgrade succeeds");
  assert_eq!(response.status(), 101);

  socket.send(Message::text("hello")).await.expect("send");
  assert_eq!(next(&mut socket).await, Message::text("echo: hello"));
  let bytes = vec![0_u8, 1, 2, 255];
  socket
    .send(Message::binary(bytes.clone()))
    .await
    .expect("send");
  assert_eq!(next(&mut socket).await, Message::binary(bytes));

  // The worker closes when asked, with its own code and reason.
  socket
    .send(Message::text("close please"))
    .await
    .expect("send");
  match next(&mut socket).await {
    Message::Close(Some(frame)) => {
      assert_eq!(frame.code, CloseCode::from(4000));
      assert_eq!(frame.reason.as_str(), "asked to");
    }
    other => panic!("expected a close frame, got {other:?}"),
  }
  // Reading on sends the client's answer to the close, and ends the stream.
  tokio::time::timeout(Duration::from_secs(10), async {
    while socket.next().await.is_some() {}
  })
  .await
  .expect("the closing handshake completes");

  // A client that closes is seen by the worker with its code.
  let (mut socket, _) = tokio_tungstenite::connect_async(&url)
    .await
    .expect("the upgrade succeeds");
  socket.close(None).await.expect("close");
  let client = http1();
  let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
  loop {
    let closes = get_text(&client, &server.url("/closes")).await;
    if closes.contains("1005") {
      assert!(closes.contains("4000"), "{closes}");
      break;
    }
    assert!(
      tokio::time::Instant::now() < deadline,
      "the worker saw {closes}"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
  }
}

#[tokio::test]
async fn a_websocket_answer_needs_an_upgrade_request() {
  let server = worker_allowing(&[]).await;
  let client = http1();
  let plain = client
    .get(server.url("/echo"))
    .send()
    .await
    .expect("answer");
  assert_eq!(plain.status(), 426, "the worker's own answer");
  let forced = client
    .get(server.url("/always-upgrade"))
    .send()
    .await
    .expect("answer");
  assert_eq!(forced.status(), 500);
  let text = forced.text().await.expect("body");
  assert!(text.contains("not a WebSocket upgrade"), "{text}");
}

/// A WebSocket echo server on 127.0.0.1 port 0; returns its port.
async fn echo_server() -> u16 {
  let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
    .await
    .expect("bind");
  let port = listener.local_addr().expect("addr").port();
  tokio::spawn(async move {
    while let Ok((stream, _)) = listener.accept().await {
      tokio::spawn(async move {
        let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
          return;
        };
        while let Some(Ok(message)) = socket.next().await {
          if let Message::Text(text) = message {
            let _ = socket
              .send(Message::text(format!("server echo: {}", text.as_str())))
              .await;
          }
        }
      });
    }
  });
  port
}

#[tokio::test]
async fn outbound_websockets_follow_the_address_policy() {
  let port = echo_server().await;
  let client = http1();
  let target = |host: &str| format!("ws://{host}:{port}/");

  let allowed = worker_allowing(&["localhost"]).await;
  let text = get_text(
    &client,
    &allowed.url(&format!("/outbound?url={}", target("localhost"))),
  )
  .await;
  assert_eq!(text, "got: server echo: hello from the worker");

  let refused = worker_allowing(&[]).await;
  let by_name = get_text(
    &client,
    &refused.url(&format!("/outbound?url={}", target("localhost"))),
  )
  .await;
  assert!(
    by_name.contains("refused: localhost resolves to 127.0.0.1, a loopback address"),
    "{by_name}"
  );
  let by_address = get_text(
    &client,
    &refused.url(&format!("/outbound?url={}", target("127.0.0.1"))),
  )
  .await;
  assert!(
    by_address.contains("refused: 127.0.0.1 is a loopback address"),
    "{by_address}"
  );
}

#[tokio::test]
async fn shutdown_closes_open_websockets_with_1001() {
  let mut server = worker_allowing(&[]).await;
  let url = format!("ws://{}/echo", server.addr);
  let (mut socket, _) = tokio_tungstenite::connect_async(&url)
    .await
    .expect("the upgrade succeeds");
  socket
    .send(Message::text("still here"))
    .await
    .expect("send");
  assert_eq!(next(&mut socket).await, Message::text("echo: still here"));

  let stopped = server.shutdown();
  match next(&mut socket).await {
    Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
    other => panic!("expected a close frame, got {other:?}"),
  }
  // Answering the close lets the server finish its shutdown.
  tokio::time::timeout(Duration::from_secs(10), async {
    while socket.next().await.is_some() {}
  })
  .await
  .expect("the closing handshake completes");
  tokio::time::timeout(Duration::from_secs(10), stopped)
    .await
    .expect("the server stops once the socket has closed")
    .expect("the server task");
}

#[tokio::test]
async fn a_peer_that_does_not_read_fills_the_send_buffer_not_the_host() {
  // Building and queueing 16 MiB is one stretch of JS; on a machine busy
  // with the rest of the suite it may pass the default 50 ms CPU limit, and
  // a fresh isolate would report "not flooded" for ever.
  let limits = outpost_runtime::WorkerLimits {
    cpu_per_request: Duration::from_secs(10),
    ..crate::util::limits_allowing(&[])
  };
  let server = TestServer::fixture_with("websocket", limits).await;
  let url = format!("ws://{}/echo", server.addr);
  let (mut socket, _) = tokio_tungstenite::connect_async(&url)
    .await
    .expect("the upgrade succeeds");
  // Asks for 40 MiB and then reads nothing.
  socket.send(Message::text("flood")).await.expect("send");
  let client = http1();
  let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
  let report = loop {
    let report = get_text(&client, &server.url("/flood")).await;
    if report != "not flooded" {
      break report;
    }
    assert!(
      tokio::time::Instant::now() < deadline,
      "the flood never ran"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
  };
  assert!(report.starts_with("TypeError after "), "{report}");
  assert!(report.contains("send buffer is full"), "{report}");
  let sent: u32 = report["TypeError after ".len()..]
    .split(' ')
    .next()
    .and_then(|n| n.parse().ok())
    .expect("a count");
  assert!(sent <= 16, "{sent} MiB were queued");
  drop(socket);
}
