//! The Send-able plumbing between a worker's WebSocket and its peer: the
//! messages, the host's end of the channels, and the pump that moves frames
//! between those channels and a real WebSocket connection.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Messages a worker's WebSocket holds before the peer's wait: past this,
/// reading from the peer pauses.
pub const INCOMING_QUEUE: usize = 64;

/// The close code for a connection that ended without a close frame.
pub const ABNORMAL_CLOSURE: u16 = 1006;

/// One WebSocket message, either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
  /// A text message.
  Text(String),
  /// A binary message.
  Binary(Bytes),
  /// A close frame, with its code and reason if it had them.
  Close {
    /// The close code.
    code: Option<u16>,
    /// The reason, possibly empty.
    reason: String,
  },
}

/// Bytes of messages a worker may have waiting for a peer that does not
/// read; past it, `send` fails rather than hold host memory without bound.
pub const MAX_QUEUED_BYTES: usize = 16 << 20;

/// The host's end of a worker's WebSocket: what the worker sends, and where
/// what the peer sends goes.
#[derive(Debug)]
pub struct WebSocketLink {
  /// Messages from the worker, to send to the peer.
  pub from_worker: mpsc::UnboundedReceiver<WsMessage>,
  /// Messages from the peer, for the worker.
  pub to_worker: mpsc::Sender<WsMessage>,
  /// Bytes sent by the worker and not yet written to the peer.
  pub queued: Arc<AtomicUsize>,
}

/// Why a message could not be queued for the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
  /// The connection has ended.
  Closed,
  /// [`MAX_QUEUED_BYTES`] are already waiting for the peer.
  Full,
}

/// The worker's side of the messages it sends, with their bytes counted
/// until the peer has them.
#[derive(Debug)]
pub struct Outgoing {
  tx: mpsc::UnboundedSender<WsMessage>,
  queued: Arc<AtomicUsize>,
}

impl Outgoing {
  /// Queues `message` for the peer.
  pub fn send(&self, message: WsMessage) -> Result<(), SendError> {
    let size = message.size();
    let reserved = self
      .queued
      .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
        queued
          .checked_add(size)
          .filter(|total| *total <= MAX_QUEUED_BYTES)
      });
    if reserved.is_err() {
      return Err(SendError::Full);
    }
    self.tx.send(message).map_err(|_| SendError::Closed)
  }

  /// Bytes waiting for the peer.
  pub fn buffered(&self) -> usize {
    self.queued.load(Ordering::Acquire)
  }
}

impl WsMessage {
  /// The bytes this message takes in a send buffer.
  fn size(&self) -> usize {
    match self {
      WsMessage::Text(text) => text.len(),
      WsMessage::Binary(bytes) => bytes.len(),
      WsMessage::Close { reason, .. } => reason.len(),
    }
  }
}

/// The worker's end: the other halves of a [`WebSocketLink`]'s channels.
#[derive(Debug)]
pub struct WorkerEnd {
  /// Messages to send to the peer.
  pub outgoing: Outgoing,
  /// Messages the peer sent.
  pub incoming: mpsc::Receiver<WsMessage>,
}

/// A connected worker end and host end.
pub fn link() -> (WorkerEnd, WebSocketLink) {
  let (tx, from_worker) = mpsc::unbounded_channel();
  let (to_worker, incoming) = mpsc::channel(INCOMING_QUEUE);
  let queued = Arc::new(AtomicUsize::new(0));
  (
    WorkerEnd {
      outgoing: Outgoing {
        tx,
        queued: queued.clone(),
      },
      incoming,
    },
    WebSocketLink {
      from_worker,
      to_worker,
      queued,
    },
  )
}

fn close_frame(code: Option<u16>, reason: String) -> Option<CloseFrame> {
  code.map(|code| CloseFrame {
    code: CloseCode::from(code),
    reason: reason.into(),
  })
}

/// The close code for a server that is going away.
pub const GOING_AWAY: u16 = 1001;

/// Moves messages between `socket` and the worker behind `link` until both
/// sides have closed or the connection fails. The worker hears of a peer
/// that went away without a close frame as close code 1006. Once `stop`
/// resolves, both sides are sent a close with code 1001 and the pump waits
/// for the peer's answer.
pub async fn pump<S>(
  socket: WebSocketStream<S>,
  link: WebSocketLink,
  stop: impl Future<Output = ()>,
) where
  S: AsyncRead + AsyncWrite + Unpin,
{
  let WebSocketLink {
    mut from_worker,
    to_worker,
    queued,
  } = link;
  let (mut sink, mut stream) = socket.split();
  let mut worker_open = true;
  let mut peer_closed = false;
  let mut stopping = false;
  let stop = std::pin::pin!(stop);
  let mut stop = stop;
  loop {
    tokio::select! {
      () = &mut stop, if !stopping => {
        stopping = true;
        let reason = "the server is shutting down".to_owned();
        if worker_open {
          worker_open = false;
          let _ = to_worker.try_send(WsMessage::Close { code: Some(GOING_AWAY), reason: reason.clone() });
        }
        if sink.send(Message::Close(close_frame(Some(GOING_AWAY), reason))).await.is_err() {
          break;
        }
      }
      out = from_worker.recv(), if worker_open => {
        let size = out.as_ref().map_or(0, WsMessage::size);
        let message = match out {
          Some(WsMessage::Text(text)) => Message::text(text),
          Some(WsMessage::Binary(bytes)) => Message::binary(bytes),
          Some(WsMessage::Close { code, reason }) => {
            worker_open = false;
            Message::Close(close_frame(code, reason))
          }
          // The worker's end is gone (its isolate stopped).
          None => {
            worker_open = false;
            Message::Close(close_frame(Some(1001), String::new()))
          }
        };
        let sent = sink.send(message).await;
        queued.fetch_sub(size, Ordering::AcqRel);
        if sent.is_err() {
          break;
        }
      }
      frame = stream.next() => {
        let message = match frame {
          Some(Ok(Message::Text(text))) => WsMessage::Text(text.as_str().to_owned()),
          Some(Ok(Message::Binary(bytes))) => WsMessage::Binary(bytes),
          Some(Ok(Message::Close(frame))) => {
            peer_closed = true;
            let (code, reason) = frame
              .map(|f| (Some(u16::from(f.code)), f.reason.as_str().to_owned()))
              .unwrap_or_default();
            WsMessage::Close { code, reason }
          }
          // Pings are answered by tungstenite itself.
          Some(Ok(_)) => continue,
          Some(Err(_)) | None => {
            if !peer_closed {
              let _ = to_worker
                .send(WsMessage::Close { code: Some(ABNORMAL_CLOSURE), reason: String::new() })
                .await;
            }
            break;
          }
        };
        // A worker that is gone no longer listens; the peer still gets its
        // close handshake completed.
        let _ = to_worker.send(message).await;
        if peer_closed {
          // tungstenite queued the reply to the close; send it.
          let _ = sink.flush().await;
        }
      }
    }
  }
}
