//! Graceful shutdown: stop accepting, let in-flight requests finish.

use std::time::Duration;

use crate::util::{TestServer, http1};

#[tokio::test(flavor = "multi_thread")]
async fn in_flight_requests_finish_after_shutdown_begins() {
  let mut server = TestServer::fixture("interleave").await;
  let slow = tokio::spawn(http1().get(server.url("/slow")).send());
  tokio::time::sleep(Duration::from_millis(200)).await;
  let stopped = server.shutdown();
  tokio::time::sleep(Duration::from_millis(100)).await;
  assert!(
    tokio::net::TcpStream::connect(server.addr).await.is_err(),
    "new connections are refused once shutdown begins"
  );
  let slow = slow
    .await
    .expect("join")
    .expect("the in-flight request completes");
  assert_eq!(slow.status(), 200);
  assert_eq!(slow.text().await.expect("body"), "slow\n");
  tokio::time::timeout(Duration::from_secs(10), stopped)
    .await
    .expect("server stops")
    .expect("join");
}
