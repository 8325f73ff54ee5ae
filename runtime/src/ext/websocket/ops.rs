//! The ops behind `WebSocketPair` and `WebSocket`: make a pair, connect out,
//! send, close and take the next event.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use deno_core::url::Url;
use deno_core::{AsyncRefCell, JsBuffer, OpState, RcRef, Resource, ResourceId, ToJsBuffer, op2};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::error::WebSocketError;
use super::link::{
  ABNORMAL_CLOSURE, MAX_QUEUED_BYTES, Outgoing, SendError, WebSocketLink, WorkerEnd, WsMessage,
  link, pump,
};
use crate::ext::fetch::client::{AddressError, checked_addrs, root_certs};
use crate::ext::fetch::{OutboundConfig, OutboundPolicy, outbound_config};

/// The worker's end of a WebSocket, for the `WebSocket` object holding it.
struct SocketResource {
  outgoing: Outgoing,
  incoming: AsyncRefCell<mpsc::Receiver<WsMessage>>,
}

impl SocketResource {
  fn new(end: WorkerEnd) -> Self {
    Self {
      outgoing: end.outgoing,
      incoming: AsyncRefCell::new(end.incoming),
    }
  }
}

impl Resource for SocketResource {
  fn name(&self) -> std::borrow::Cow<'_, str> {
    "webSocket".into()
  }
}

/// The client end of a `WebSocketPair`, until a 101 response hands it to
/// the host.
struct PeerResource(RefCell<Option<WebSocketLink>>);

impl Resource for PeerResource {
  fn name(&self) -> std::borrow::Cow<'_, str> {
    "webSocketPeer".into()
  }
}

/// Takes the host's end of the pair whose client end is `rid`, for a 101
/// response.
pub fn take_peer(state: &mut OpState, rid: ResourceId) -> Result<WebSocketLink, WebSocketError> {
  let peer = state
    .resource_table
    .take::<PeerResource>(rid)
    .map_err(|_| WebSocketError::PeerUsed)?;
  let link = peer.0.borrow_mut().take();
  link.ok_or(WebSocketError::PeerUsed)
}

fn socket(state: &OpState, rid: ResourceId) -> Result<Rc<SocketResource>, WebSocketError> {
  state
    .resource_table
    .get::<SocketResource>(rid)
    .map_err(|_| WebSocketError::Closed)
}

/// Makes a linked pair: `[server, client]` resource ids. The server end is
/// the worker's; the client end goes out in a 101 response.
#[op2]
#[serde]
pub fn op_websocket_pair(state: &mut OpState) -> (ResourceId, ResourceId) {
  let (end, peer) = link();
  let server = state.resource_table.add(SocketResource::new(end));
  let client = state
    .resource_table
    .add(PeerResource(RefCell::new(Some(peer))));
  (server, client)
}

/// Sends a text message; false once the socket is closed.
#[op2(fast)]
pub fn op_websocket_send_text(
  state: &mut OpState,
  #[smi] rid: ResourceId,
  #[string] text: String,
) -> Result<bool, WebSocketError> {
  queue(state, rid, WsMessage::Text(text))
}

/// Sends a binary message; false once the socket is closed.
#[op2]
pub fn op_websocket_send_binary(
  state: &mut OpState,
  #[smi] rid: ResourceId,
  #[buffer] data: JsBuffer,
) -> Result<bool, WebSocketError> {
  queue(state, rid, WsMessage::Binary(data.to_vec().into()))
}

/// Queues `message` for the peer: false once the socket is closed, an
/// error once too much waits for a peer that does not read.
fn queue(state: &OpState, rid: ResourceId, message: WsMessage) -> Result<bool, WebSocketError> {
  match socket(state, rid)?.outgoing.send(message) {
    Ok(()) => Ok(true),
    Err(SendError::Closed) => Ok(false),
    Err(SendError::Full) => Err(WebSocketError::BufferFull(MAX_QUEUED_BYTES >> 20)),
  }
}

/// Bytes sent and not yet written to the peer (`bufferedAmount`).
#[op2(fast)]
#[number]
pub fn op_websocket_buffered(state: &mut OpState, #[smi] rid: ResourceId) -> u64 {
  socket(state, rid).map_or(0, |s| s.outgoing.buffered() as u64)
}

/// Starts the closing handshake.
#[op2]
pub fn op_websocket_close(
  state: &mut OpState,
  #[smi] rid: ResourceId,
  code: Option<u16>,
  #[string] reason: String,
) -> Result<(), WebSocketError> {
  let _ = socket(state, rid)?
    .outgoing
    .send(WsMessage::Close { code, reason });
  Ok(())
}

/// What arrived from the peer.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum SocketEvent {
  /// A text message.
  Text { data: String },
  /// A binary message.
  Binary { data: ToJsBuffer },
  /// The peer closed, or went away (1006).
  Close { code: u16, reason: String },
}

/// The next message or close from the peer.
#[op2]
#[serde]
pub async fn op_websocket_next(
  state: Rc<RefCell<OpState>>,
  #[smi] rid: ResourceId,
) -> Result<SocketEvent, WebSocketError> {
  let socket = socket(&state.borrow(), rid)?;
  let mut incoming = RcRef::map(&socket, |s| &s.incoming).borrow_mut().await;
  Ok(match incoming.recv().await {
    Some(WsMessage::Text(data)) => SocketEvent::Text { data },
    Some(WsMessage::Binary(bytes)) => SocketEvent::Binary {
      data: bytes.to_vec().into(),
    },
    // A close frame without a code reads as 1005, "no status received".
    Some(WsMessage::Close { code, reason }) => SocketEvent::Close {
      code: code.unwrap_or(1005),
      reason,
    },
    None => SocketEvent::Close {
      code: ABNORMAL_CLOSURE,
      reason: String::new(),
    },
  })
}

/// A connected outbound WebSocket.
#[derive(Debug, Serialize)]
pub struct Connected {
  rid: ResourceId,
  protocol: String,
}

/// Connects to `url` (ws: or wss:) under the worker's address policy, and
/// pumps the connection on this thread's runtime.
#[op2]
#[serde]
pub async fn op_websocket_connect(
  state: Rc<RefCell<OpState>>,
  #[string] url: String,
  #[serde] protocols: Vec<String>,
) -> Result<Connected, WebSocketError> {
  let OutboundConfig {
    policy, timeout, ..
  } = outbound_config(&state.borrow());
  let url = Url::parse(&url).map_err(|e| WebSocketError::BadUrl(e.to_string()))?;
  let (socket, protocol) = tokio::time::timeout(timeout, connect(&url, protocols, &policy))
    .await
    .map_err(|_| {
      WebSocketError::Connect(format!(
        "{url} did not complete the handshake within {} ms",
        timeout.as_millis()
      ))
    })??;
  let (end, link) = link();
  // An outbound socket lives as long as its isolate or its peer.
  tokio::spawn(pump(socket, link, std::future::pending()));
  let rid = state
    .borrow_mut()
    .resource_table
    .add(SocketResource::new(end));
  Ok(Connected { rid, protocol })
}

/// Opens the TCP (and TLS) connection after checking its address, and runs
/// the opening handshake. Returns the socket and the chosen subprotocol.
async fn connect(
  url: &Url,
  protocols: Vec<String>,
  policy: &OutboundPolicy,
) -> Result<(WebSocketStream<MaybeTlsStream<TcpStream>>, String), WebSocketError> {
  let (host, port) = match (url.scheme(), url.host(), url.port_or_known_default()) {
    ("ws" | "wss", Some(host), Some(port)) => (host, port),
    _ => {
      return Err(WebSocketError::BadUrl(format!(
        "{url} is not a ws: or wss: URL"
      )));
    }
  };
  let addrs = checked_addrs(policy, &host.to_string(), port)
    .await
    .map_err(|err| match err {
      AddressError::Refused(why) => WebSocketError::Refused {
        url: url.to_string(),
        why,
      },
      AddressError::Resolve(err) => WebSocketError::Connect(err.to_string()),
    })?;
  let tcp = tokio::net::TcpStream::connect(&addrs[..])
    .await
    .map_err(|e| WebSocketError::Connect(e.to_string()))?;
  let mut request = url
    .as_str()
    .into_client_request()
    .map_err(|e| WebSocketError::BadUrl(e.to_string()))?;
  if !protocols.is_empty() {
    let offered = HeaderValue::from_str(&protocols.join(", "))
      .map_err(|_| WebSocketError::BadUrl("invalid subprotocol".into()))?;
    request
      .headers_mut()
      .insert("sec-websocket-protocol", offered);
  }
  let tls = deno_tls::create_client_config(deno_tls::TlsClientConfigOptions {
    root_cert_store: Some(root_certs()),
    ..Default::default()
  })
  .map_err(|e| WebSocketError::Connect(e.to_string()))?;
  let connector = tokio_tungstenite::Connector::Rustls(Arc::new(tls));
  let (socket, response) =
    tokio_tungstenite::client_async_tls_with_config(request, tcp, None, Some(connector))
      .await
      .map_err(|e| WebSocketError::Connect(e.to_string()))?;
  let protocol = response
    .headers()
    .get("sec-websocket-protocol")
    .and_then(|v| v.to_str().ok())
    .unwrap_or_default()
    .to_owned();
  Ok((socket, protocol))
}
