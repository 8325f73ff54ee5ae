//! HTTP/3: the same routes and workers over QUIC (quinn + h3), on a UDP
//! port beside the HTTPS one, with the same certificates chosen by SNI.
//!
//! Request and response bodies stream both ways: each request stream is
//! split, its body pumped into the worker as it arrives while the
//! response goes out as the worker produces it. On shutdown every
//! connection gets a GOAWAY, in-flight requests finish within the grace
//! period, and the endpoint closes.

use std::future::Future;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use h3::error::Code;
use h3::server::RequestStream;
use http::{HeaderMap, Method, StatusCode};
use outpost_runtime::{ResponseBody, WorkerResponse};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::admission::Admitted;
use crate::convert::{ConnectionInfo, HOP_BY_HOP};
use crate::dispatch::Dispatcher;
use crate::pipeline::{self, Arrival, BodySource, Pipeline};
use crate::routes::Routes;
use crate::server::ServerConfig;
use crate::tls::SniResolver;
use crate::traffic::Protocol;

/// How long a connection told to go away waits for the client to close
/// it once its last response is sent.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

type SendHalf = RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;
type RecvHalf = RequestStream<h3_quinn::RecvStream, Bytes>;

/// Why the HTTP/3 endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum H3Error {
  /// rustls refused the QUIC TLS set-up.
  #[error("QUIC TLS: {0}")]
  Tls(String),
  /// The UDP socket could not be used.
  #[error("UDP socket: {0}")]
  Socket(#[from] std::io::Error),
}

// HTTP/3 serves from the same pipeline as HTTP/1.1 and HTTP/2.
type H3Node = Pipeline;

/// The `alt-svc` value that advertises HTTP/3 on `port`.
pub fn alt_svc(port: u16) -> http::HeaderValue {
  http::HeaderValue::from_str(&format!("h3=\":{port}\"; ma=86400"))
    .unwrap_or_else(|_| http::HeaderValue::from_static("clear"))
}

/// Opens the HTTP/3 endpoint on `socket`, with certificates from
/// `resolver`.
pub fn bind(
  socket: std::net::UdpSocket,
  resolver: &Arc<SniResolver>,
) -> Result<quinn::Endpoint, H3Error> {
  let mut tls = resolver.server_config();
  tls.alpn_protocols = vec![b"h3".to_vec()];
  tls.max_early_data_size = 0;
  let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
    .map_err(|e| H3Error::Tls(e.to_string()))?;
  let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
  let runtime = Arc::new(quinn::TokioRuntime);
  Ok(quinn::Endpoint::new(
    quinn::EndpointConfig::default(),
    Some(config),
    socket,
    runtime,
  )?)
}

/// Serves HTTP/3 on `endpoint` until `shutdown` resolves, then sends every
/// connection a GOAWAY and waits up to `config.shutdown_grace` for
/// in-flight requests.
pub async fn run(
  endpoint: quinn::Endpoint,
  routes: Routes,
  dispatcher: Arc<Dispatcher>,
  config: ServerConfig,
  shutdown: impl Future<Output = ()>,
) {
  let grace = config.shutdown_grace;
  let node = Arc::new(Pipeline {
    routes,
    dispatcher,
    config,
  });
  let (closing, closing_rx) = watch::channel(false);
  let mut connections = JoinSet::new();
  tokio::pin!(shutdown);
  loop {
    tokio::select! {
      incoming = endpoint.accept() => {
        let Some(incoming) = incoming else { break };
        let caps = &node.config.connection_caps;
        let Some(admitted) = caps.admit(incoming.remote_address().ip()) else {
          tracing::debug!(peer = %incoming.remote_address(), "QUIC connection refused: the connection cap is reached");
          incoming.refuse();
          continue;
        };
        connections.spawn(serve_connection(incoming, node.clone(), closing_rx.clone(), admitted));
      }
      Some(_) = connections.join_next(), if !connections.is_empty() => {}
      () = &mut shutdown => break,
    }
  }
  tracing::info!("HTTP/3: shutting down, waiting up to {grace:?} for in-flight requests");
  closing.send_replace(true);
  let drained = tokio::time::timeout(grace, async {
    while connections.join_next().await.is_some() {}
  })
  .await;
  if drained.is_err() {
    tracing::warn!("HTTP/3 requests were still running at the shutdown deadline");
  }
  endpoint.close(quinn::VarInt::from_u32(0), b"shutting down");
  let _ = tokio::time::timeout(std::time::Duration::from_secs(1), endpoint.wait_idle()).await;
}

/// Serves one QUIC connection; `_admitted` holds its place under the
/// connection caps until it ends.
async fn serve_connection(
  incoming: quinn::Incoming,
  node: Arc<H3Node>,
  mut closing: watch::Receiver<bool>,
  _admitted: Admitted,
) {
  let peer = incoming.remote_address();
  let connection = match incoming.await {
    Ok(connection) => connection,
    Err(err) => {
      tracing::debug!(%peer, "QUIC handshake failed: {err}");
      return;
    }
  };
  let quic = connection.clone();
  // A header section over the limit is answered 431 by h3 itself.
  let max_header_bytes = u64::try_from(node.config.max_header_bytes).unwrap_or(u64::MAX);
  let built = h3::server::builder()
    .max_field_section_size(max_header_bytes)
    .build(h3_quinn::Connection::new(connection))
    .await;
  let mut h3 = match built {
    Ok(h3) => h3,
    Err(err) => {
      tracing::debug!(%peer, "HTTP/3 set-up failed: {err}");
      return;
    }
  };
  let mut requests = JoinSet::new();
  loop {
    tokio::select! {
      accepted = h3.accept() => match accepted {
        Ok(Some(resolver)) => {
          let node = node.clone();
          requests.spawn(async move {
            match resolver.resolve_request().await {
              Ok((request, stream)) => {
                let span = tracing::debug_span!(
                  "request",
                  method = %request.method(),
                  uri = %request.uri(),
                  protocol = "h3"
                );
                serve_request(&node, request, stream).instrument(span).await
              }
              Err(err) => tracing::debug!(%peer, "bad HTTP/3 request: {err}"),
            }
          });
        }
        Ok(None) => break,
        Err(err) => {
          tracing::debug!(%peer, "HTTP/3 connection ended: {err}");
          break;
        }
      },
      Some(_) = requests.join_next(), if !requests.is_empty() => {}
      _ = closing.changed() => {
        // GOAWAY: no new requests; those in flight finish below.
        let _ = h3.shutdown(0).await;
        break;
      }
    }
  }
  while requests.join_next().await.is_some() {}
  // A finished response may still be in flight: closing now would discard
  // it. Give the client a moment to read it and close.
  let _ = tokio::time::timeout(CLOSE_WAIT, quic.closed()).await;
}

/// HTTP/3's adapter to the pipeline: the body streamed from the QUIC
/// stream, the response streamed back; WebSockets are refused.
async fn serve_request(
  node: &H3Node,
  request: http::Request<()>,
  stream: RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>,
) {
  let arrived = std::time::Instant::now();
  let (mut send, recv) = stream.split();
  let (head, ()) = request.into_parts();
  let source = (!has_no_body(&head.method, &head.headers)).then_some(recv);
  let (body, overflow) = pipeline::stream_body(source, node.config.max_body_bytes);
  let arrival = Arrival {
    head,
    body,
    overflow,
    scheme: "https",
    info: ConnectionInfo {
      tls: Some("TLSv1.3"),
      rtt_ms: None,
    },
  };
  let response = match node.serve(arrival).await {
    response if matches!(response.body, ResponseBody::WebSocket(_)) => WorkerResponse::text(
      StatusCode::BAD_REQUEST,
      "WebSockets are not offered over HTTP/3.\n",
    ),
    response => response,
  };
  node
    .config
    .traffic
    .record(Protocol::Http3, response.status, arrived.elapsed());
  respond(&mut send, response).await;
}

/// Whether a request plainly has no body: a method that carries none and
/// no length. (HTTP/3 cannot say so up front otherwise.)
fn has_no_body(method: &Method, headers: &HeaderMap) -> bool {
  let bodiless = matches!(
    *method,
    Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE | Method::TRACE
  );
  let length = headers
    .get(http::header::CONTENT_LENGTH)
    .and_then(|v| v.to_str().ok())
    .and_then(|v| v.parse::<u64>().ok());
  bodiless && length.unwrap_or(0) == 0
}

/// A QUIC request stream's body as the pipeline reads it; refusing it
/// asks the client to stop sending.
impl BodySource for RecvHalf {
  async fn next_chunk(&mut self) -> Option<Result<Bytes, String>> {
    match self.recv_data().await {
      Ok(Some(mut data)) => Some(Ok(data.copy_to_bytes(data.remaining()))),
      Ok(None) => None,
      Err(err) => Some(Err(err.to_string())),
    }
  }

  fn refuse(&mut self) {
    self.stop_sending(Code::H3_REQUEST_REJECTED);
  }
}

/// Sends `response`'s head, then its body as the worker produces it. A
/// body the worker failed mid-way resets the stream rather than ending it
/// cleanly.
async fn respond(send: &mut SendHalf, response: WorkerResponse) {
  let mut head = http::Response::new(());
  *head.status_mut() = response.status;
  *head.headers_mut() = response.headers;
  for name in HOP_BY_HOP {
    head.headers_mut().remove(name);
  }
  if send.send_response(head).await.is_err() {
    return;
  }
  match response.body {
    ResponseBody::Full(bytes) if bytes.is_empty() => {}
    ResponseBody::Full(bytes) => {
      if send.send_data(bytes).await.is_err() {
        return;
      }
    }
    ResponseBody::Stream(mut rx) => {
      while let Some(chunk) = rx.recv().await {
        match chunk {
          Ok(chunk) => {
            if send.send_data(chunk).await.is_err() {
              return;
            }
          }
          Err(err) => {
            tracing::debug!("response body failed mid-stream: {err}");
            send.stop_stream(Code::H3_INTERNAL_ERROR);
            return;
          }
        }
      }
    }
    ResponseBody::WebSocket(_) => {}
  }
  let _ = send.finish().await;
}
