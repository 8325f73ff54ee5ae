//! The sync endpoint: one QUIC connection per edge node, mutual TLS with
//! the control plane's CA. See `outpost_protocol::sync` for the streams.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use outpost_protocol::sync::{
  BundleReply, ControlMessage, EdgeMessage, StreamOpen, read_frame, write_frame, write_raw,
};
use outpost_protocol::tail::TailBatch;
use tokio::sync::{broadcast, mpsc};

use crate::app::ControlPlane;
use crate::certs::Authority;

/// QUIC application error codes the control plane closes with.
const UNKNOWN_NODE: u32 = 1;
const SHUTTING_DOWN: u32 = 2;
const REMOVED: u32 = 3;

/// Opens the sync endpoint on `address`, with a server certificate from
/// `authority`.
pub fn bind(authority: &Authority, address: SocketAddr) -> Result<quinn::Endpoint, crate::Error> {
  let config = authority.sync_server_config()?;
  Ok(quinn::Endpoint::server(config, address)?)
}

/// Serves edge connections on `endpoint` until `shutdown` resolves.
pub async fn run(
  endpoint: quinn::Endpoint,
  app: Arc<ControlPlane>,
  shutdown: impl Future<Output = ()>,
) {
  tokio::pin!(shutdown);
  loop {
    tokio::select! {
      incoming = endpoint.accept() => {
        let Some(incoming) = incoming else { break };
        let app = app.clone();
        tokio::spawn(async move {
          let peer = incoming.remote_address();
          if let Err(err) = serve_edge(incoming, app).await {
            tracing::info!(%peer, "edge connection ended: {err}");
          }
        });
      }
      () = &mut shutdown => break,
    }
  }
  endpoint.close(quinn::VarInt::from_u32(SHUTTING_DOWN), b"shutting down");
}

/// Why an edge connection ended.
#[derive(Debug, thiserror::Error)]
enum EdgeError {
  #[error("{0}")]
  Connection(#[from] quinn::ConnectionError),
  #[error("{0}")]
  Frame(#[from] outpost_protocol::sync::FrameError),
  #[error("{0}")]
  Store(#[from] crate::store::StoreError),
  #[error("the client certificate names no enrolled edge")]
  UnknownNode,
}

async fn serve_edge(incoming: quinn::Incoming, app: Arc<ControlPlane>) -> Result<(), EdgeError> {
  let connection = incoming.await?;
  let node = match node_id(&connection) {
    Some(node)
      if app
        .store()
        .edges()
        .await?
        .iter()
        .any(|edge| edge.id == node) =>
    {
      node
    }
    _ => {
      connection.close(quinn::VarInt::from_u32(UNKNOWN_NODE), b"unknown edge node");
      return Err(EdgeError::UnknownNode);
    }
  };
  tracing::info!(%node, peer = %connection.remote_address(), "edge connected");
  let _counted = app.edge_connected();
  let mut removed = app.watch_removed_edges();
  loop {
    let (send, recv) = tokio::select! {
      accepted = connection.accept_bi() => accepted?,
      gone = removed.recv() => match gone {
        Ok(id) if id != node => continue,
        // Removed, or too many removals to tell: check the store.
        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
          if app.store().edges().await?.iter().any(|edge| edge.id == node) {
            continue;
          }
          connection.close(quinn::VarInt::from_u32(REMOVED), b"this edge node was removed");
          return Err(EdgeError::UnknownNode);
        }
        Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
      },
    };
    let app = app.clone();
    let node = node.clone();
    tokio::spawn(async move {
      if let Err(err) = serve_stream(send, recv, &app, &node).await {
        tracing::debug!(%node, "sync stream ended: {err}");
      }
    });
  }
}

/// The node id: the common name of the client certificate the CA issued.
fn node_id(connection: &quinn::Connection) -> Option<String> {
  let identity = connection.peer_identity()?;
  let chain = identity
    .downcast::<Vec<rustls_pki_types::CertificateDer<'static>>>()
    .ok()?;
  let (_, cert) = x509_parser::parse_x509_certificate(chain.first()?).ok()?;
  let name = cert
    .subject()
    .iter_common_name()
    .next()?
    .as_str()
    .ok()?
    .to_owned();
  Some(name)
}

async fn serve_stream(
  mut send: quinn::SendStream,
  mut recv: quinn::RecvStream,
  app: &ControlPlane,
  node: &str,
) -> Result<(), EdgeError> {
  match read_frame::<_, StreamOpen>(&mut recv).await? {
    Some(StreamOpen::Bundle { hash }) => send_stored(send, app.store().bundle(hash).await?).await,
    Some(StreamOpen::Asset { hash }) => send_stored(send, app.store().asset(hash).await?).await,
    Some(StreamOpen::Control { epoch }) => follow_changes(send, recv, app, node, epoch).await,
    Some(StreamOpen::Logs) => {
      while let Some(batch) = read_frame::<_, TailBatch>(&mut recv).await? {
        for mut event in batch.events {
          event.edge = node.to_owned();
          app.tail_event(event);
        }
      }
      Ok(())
    }
    Some(StreamOpen::Fired { result }) => {
      if !app.firings().answered(node, result.clone()) {
        // Asked by a process that has gone since: record it here.
        crate::scheduler::record(app, node, result).await?;
      }
      let _ = send.finish();
      Ok(())
    }
    Some(StreamOpen::Kv { request }) => {
      crate::kv::serve_request(app, node, request, &mut send, &mut recv).await?;
      let _ = send.finish();
      Ok(())
    }
    None => Ok(()),
  }
}

/// Answers a bundle or asset stream: found, then the bytes; or not found.
async fn send_stored(mut send: quinn::SendStream, bytes: Option<Vec<u8>>) -> Result<(), EdgeError> {
  match bytes {
    Some(bytes) => {
      write_frame(&mut send, &BundleReply::Found).await?;
      write_raw(&mut send, &bytes).await?;
    }
    None => write_frame(&mut send, &BundleReply::NotFound).await?,
  }
  let _ = send.finish();
  Ok(())
}

/// Sends the state whenever it moves past what the node has, and the cron
/// firings handed to the node; records the node's acks.
async fn follow_changes(
  mut send: quinn::SendStream,
  mut recv: quinn::RecvStream,
  app: &ControlPlane,
  node: &str,
  mut sent: u64,
) -> Result<(), EdgeError> {
  let store = app.store();
  store.edge_seen(node.to_owned(), sent).await?;
  // Acks are read on a task of their own: a frame read is not safe to
  // abandon halfway, as a select! would.
  let (acks_tx, mut acks) = mpsc::unbounded_channel();
  tokio::spawn(async move {
    while let Ok(Some(EdgeMessage::Ack { epoch })) = read_frame::<_, EdgeMessage>(&mut recv).await {
      if acks_tx.send(epoch).is_err() {
        break;
      }
    }
  });
  let mut epochs = app.watch_epoch();
  let mut kv_changes = app.watch_kv_changes();
  let mut tailed = app.watch_tailed();
  let workers = tailed.borrow_and_update().clone();
  if !workers.is_empty() {
    write_frame(&mut send, &ControlMessage::Tail { workers }).await?;
  }
  let (mut firings, _attached) = app.firings().attach(node);
  let mut epoch_moved = true;
  loop {
    if epoch_moved {
      let state = app.edge_state().await?;
      if state.epoch > sent {
        sent = state.epoch;
        write_frame(&mut send, &ControlMessage::State(state)).await?;
      }
    }
    epoch_moved = false;
    tokio::select! {
      changed = epochs.changed() => {
        if changed.is_err() {
          return Ok(());
        }
        epoch_moved = true;
      }
      changed = tailed.changed() => {
        if changed.is_err() {
          return Ok(());
        }
        let workers = tailed.borrow_and_update().clone();
        write_frame(&mut send, &ControlMessage::Tail { workers }).await?;
      }
      change = kv_changes.recv() => {
        let message = match change {
          Ok(change) if change.origin.as_deref() == Some(node) => continue,
          Ok(change) => ControlMessage::KvInvalidate {
            namespace: change.namespace,
            keys: change.keys,
          },
          Err(broadcast::error::RecvError::Lagged(_)) => ControlMessage::KvFlush,
          Err(broadcast::error::RecvError::Closed) => return Ok(()),
        };
        write_frame(&mut send, &message).await?;
      }
      Some(firing) = firings.recv() => {
        write_frame(&mut send, &ControlMessage::Fire(firing)).await?;
      }
      ack = acks.recv() => match ack {
        Some(epoch) => {
          store.edge_seen(node.to_owned(), epoch).await?;
          tracing::debug!(%node, epoch, "edge serves epoch");
        }
        None => return Ok(()),
      },
    }
  }
}
