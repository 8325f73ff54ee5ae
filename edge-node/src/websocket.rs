//! WebSocket upgrades: a worker that answers a WebSocket upgrade request
//! with a 101 response (and the client end of a `WebSocketPair`) gets the
//! upgraded connection pumped into its WebSocket.

use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use outpost_runtime::{ResponseBody, WorkerResponse};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::convert::{EdgeBody, HOP_BY_HOP, platform_error};

/// What an upgrade request leaves for its answer: the upgraded connection
/// to come, and the client's key.
pub(crate) struct Upgrade {
  on_upgrade: OnUpgrade,
  key: http::HeaderValue,
}

fn has_token(headers: &http::HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
  headers
    .get_all(name)
    .iter()
    .filter_map(|v| v.to_str().ok())
    .flat_map(|v| v.split(','))
    .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Takes the pending upgrade out of a WebSocket upgrade request (HTTP/1.1
/// `Connection: upgrade`, `Upgrade: websocket`, version 13, with a key).
pub(crate) fn take_upgrade(req: &mut http::Request<Incoming>) -> Option<Upgrade> {
  let headers = req.headers();
  let wanted = has_token(headers, http::header::CONNECTION, "upgrade")
    && has_token(headers, http::header::UPGRADE, "websocket")
    && headers
      .get(http::header::SEC_WEBSOCKET_VERSION)
      .is_some_and(|v| v == "13");
  let key = headers.get(http::header::SEC_WEBSOCKET_KEY)?.clone();
  wanted.then(|| Upgrade {
    on_upgrade: hyper::upgrade::on(req),
    key,
  })
}

/// Answers with 101 and pumps the upgraded connection into the worker's
/// WebSocket, if the request was an upgrade; otherwise 500, and the worker's
/// socket sees the connection close (1006).
pub(crate) fn accept(
  upgrade: Option<Upgrade>,
  response: WorkerResponse,
  mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> http::Response<EdgeBody> {
  let ResponseBody::WebSocket(link) = response.body else {
    return platform_error(
      http::StatusCode::INTERNAL_SERVER_ERROR,
      "Not a WebSocket response.\n",
    );
  };
  let Some(Upgrade { on_upgrade, key }) = upgrade else {
    tracing::warn!("the worker answered a request that was no WebSocket upgrade with a WebSocket");
    return platform_error(
      http::StatusCode::INTERNAL_SERVER_ERROR,
      "The worker answered with a WebSocket, but the request was not a WebSocket upgrade.\n",
    );
  };
  let mut headers = response.headers;
  for name in HOP_BY_HOP {
    headers.remove(name);
  }
  headers.insert(
    http::header::UPGRADE,
    http::HeaderValue::from_static("websocket"),
  );
  headers.insert(
    http::header::CONNECTION,
    http::HeaderValue::from_static("upgrade"),
  );
  let accept_key = derive_accept_key(key.as_bytes());
  if let Ok(value) = http::HeaderValue::from_str(&accept_key) {
    headers.insert(http::header::SEC_WEBSOCKET_ACCEPT, value);
  }
  tokio::spawn(async move {
    match on_upgrade.await {
      Ok(upgraded) => {
        let socket =
          WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        // Held until the pump ends, so the server knows when every socket
        // has closed.
        let stop = async move {
          let _ = shutdown.wait_for(|stopping| *stopping).await;
        };
        outpost_runtime::pump_websocket(socket, link, stop).await;
      }
      Err(err) => tracing::debug!("the WebSocket upgrade did not complete: {err}"),
    }
  });
  let mut out = http::Response::new(EdgeBody::Full(None));
  *out.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
  *out.headers_mut() = headers;
  out
}
