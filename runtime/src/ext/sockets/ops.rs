//! `op_sockets_*`: open a TCP connection (TLS from the start or after
//! `startTls()`) under the worker's address policy, and read, write and
//! half-close it.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use deno_core::{
  AsyncRefCell, CancelFuture, CancelHandle, JsBuffer, OpState, RcRef, Resource, ResourceId, op2,
};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::error::SocketError;
use crate::ext::fetch::client::{AddressError, checked_addrs, root_certs};
use crate::ext::fetch::{OutboundConfig, outbound_config};

/// A connection, plain or over TLS.
enum Conn {
  Plain(TcpStream),
  Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
  fn poll_read(
    self: Pin<&mut Self>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
  ) -> Poll<io::Result<()>> {
    match self.get_mut() {
      Conn::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
      Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
    }
  }
}

impl AsyncWrite for Conn {
  fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    match self.get_mut() {
      Conn::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
      Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
    }
  }

  fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    match self.get_mut() {
      Conn::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
      Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
    }
  }

  fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    match self.get_mut() {
      Conn::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
      Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
    }
  }
}

/// An open socket: its halves, taken out by `startTls()` (or never there
/// again once it has run), and what cancels its pending reads and writes
/// when the worker closes it.
struct SocketResource {
  reader: AsyncRefCell<Option<ReadHalf<Conn>>>,
  writer: AsyncRefCell<Option<WriteHalf<Conn>>>,
  cancel: CancelHandle,
}

impl SocketResource {
  fn new(conn: Conn) -> Self {
    let (reader, writer) = tokio::io::split(conn);
    Self {
      reader: AsyncRefCell::new(Some(reader)),
      writer: AsyncRefCell::new(Some(writer)),
      cancel: CancelHandle::new(),
    }
  }
}

impl Resource for SocketResource {
  fn name(&self) -> std::borrow::Cow<'_, str> {
    "outpostSocket".into()
  }

  fn close(self: Rc<Self>) {
    self.cancel.cancel();
  }
}

fn socket(
  state: &Rc<RefCell<OpState>>,
  rid: ResourceId,
) -> Result<Rc<SocketResource>, SocketError> {
  state
    .borrow()
    .resource_table
    .get::<SocketResource>(rid)
    .map_err(|_| SocketError::Closed)
}

async fn handshake(tcp: TcpStream, server: &str, address: &str) -> Result<Conn, SocketError> {
  let failed = |why: String| SocketError::Connect {
    address: address.to_owned(),
    why,
  };
  let name = ServerName::try_from(
    server
      .trim_start_matches('[')
      .trim_end_matches(']')
      .to_owned(),
  )
  .map_err(|_| SocketError::BadAddress(server.to_owned()))?;
  let config = deno_tls::create_client_config(deno_tls::TlsClientConfigOptions {
    root_cert_store: Some(root_certs()),
    ..Default::default()
  })
  .map_err(|err| failed(err.to_string()))?;
  let tls = TlsConnector::from(Arc::new(config))
    .connect(name, tcp)
    .await
    .map_err(|err| failed(format!("TLS handshake: {err}")))?;
  Ok(Conn::Tls(Box::new(tls)))
}

/// What `connect()` opened: its resource, and the address it reached.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Opened {
  rid: ResourceId,
  remote_address: String,
  remote_port: u16,
}

/// Connects to `host`:`port` under the worker's address policy and its
/// subrequest timeout, with TLS at once if `tls`.
#[op2]
#[serde]
pub async fn op_sockets_connect(
  state: Rc<RefCell<OpState>>,
  #[string] host: String,
  #[smi] port: u32,
  tls: bool,
) -> Result<Opened, SocketError> {
  let address = format!("{host}:{port}");
  let port = u16::try_from(port)
    .ok()
    .filter(|port| *port != 0)
    .ok_or_else(|| SocketError::BadAddress(address.clone()))?;
  if host.is_empty() {
    return Err(SocketError::BadAddress(address));
  }
  let OutboundConfig {
    policy, timeout, ..
  } = outbound_config(&state.borrow());
  let failed = |why: String| SocketError::Connect {
    address: address.clone(),
    why,
  };
  let opening = async {
    let addrs = checked_addrs(&policy, &host, port)
      .await
      .map_err(|err| match err {
        AddressError::Refused(why) => SocketError::Refused {
          address: address.clone(),
          why,
        },
        AddressError::Resolve(err) => failed(err.to_string()),
      })?;
    let tcp = TcpStream::connect(&addrs[..])
      .await
      .map_err(|err| failed(err.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let remote = tcp.peer_addr().map_err(|err| failed(err.to_string()))?;
    let conn = if tls {
      handshake(tcp, &host, &address).await?
    } else {
      Conn::Plain(tcp)
    };
    Ok::<_, SocketError>((conn, remote))
  };
  let (conn, remote) = tokio::time::timeout(timeout, opening)
    .await
    .map_err(|_| failed(format!("no connection within {} ms", timeout.as_millis())))??;
  let rid = state
    .borrow_mut()
    .resource_table
    .add(SocketResource::new(conn));
  Ok(Opened {
    rid,
    remote_address: remote.ip().to_string(),
    remote_port: remote.port(),
  })
}

/// Reads into `buf`; 0 at the end of the stream.
#[op2]
#[number]
pub async fn op_sockets_read(
  state: Rc<RefCell<OpState>>,
  #[smi] rid: ResourceId,
  #[buffer] mut buf: JsBuffer,
) -> Result<usize, SocketError> {
  let socket = socket(&state, rid)?;
  let cancel = RcRef::map(&socket, |s| &s.cancel);
  let mut reader = RcRef::map(&socket, |s| &s.reader).borrow_mut().await;
  let Some(reader) = &mut *reader else {
    return Err(SocketError::Closed);
  };
  let read = reader.read(&mut buf).or_cancel(cancel).await;
  Ok(read.map_err(|_| SocketError::Closed)??)
}

/// Writes all of `data`.
#[op2]
pub async fn op_sockets_write(
  state: Rc<RefCell<OpState>>,
  #[smi] rid: ResourceId,
  #[buffer] data: JsBuffer,
) -> Result<(), SocketError> {
  let socket = socket(&state, rid)?;
  let cancel = RcRef::map(&socket, |s| &s.cancel);
  let mut writer = RcRef::map(&socket, |s| &s.writer).borrow_mut().await;
  let Some(writer) = &mut *writer else {
    return Err(SocketError::Closed);
  };
  let written = writer.write_all(&data).or_cancel(cancel).await;
  Ok(written.map_err(|_| SocketError::Closed)??)
}

/// Half-closes the socket: no more writes, reads go on.
#[op2]
pub async fn op_sockets_shutdown(
  state: Rc<RefCell<OpState>>,
  #[smi] rid: ResourceId,
) -> Result<(), SocketError> {
  let socket = socket(&state, rid)?;
  let mut writer = RcRef::map(&socket, |s| &s.writer).borrow_mut().await;
  let Some(writer) = &mut *writer else {
    return Err(SocketError::Closed);
  };
  writer.shutdown().await?;
  Ok(())
}

/// Upgrades a plain socket to TLS with `server` as the name to verify:
/// the old resource is closed and the new one returned.
#[op2]
#[smi]
pub async fn op_sockets_start_tls(
  state: Rc<RefCell<OpState>>,
  #[smi] rid: ResourceId,
  #[string] server: String,
) -> Result<ResourceId, SocketError> {
  let socket = state
    .borrow_mut()
    .resource_table
    .take::<SocketResource>(rid)
    .map_err(|_| SocketError::Closed)?;
  // Reads or writes still pending on the old socket give way.
  socket.cancel.cancel();
  let reader = RcRef::map(&socket, |s| &s.reader).borrow_mut().await.take();
  let writer = RcRef::map(&socket, |s| &s.writer).borrow_mut().await.take();
  let (Some(reader), Some(writer)) = (reader, writer) else {
    return Err(SocketError::Closed);
  };
  let Conn::Plain(tcp) = reader.unsplit(writer) else {
    return Err(SocketError::NotUpgradable);
  };
  let conn = handshake(tcp, &server, &server).await?;
  Ok(
    state
      .borrow_mut()
      .resource_table
      .add(SocketResource::new(conn)),
  )
}
