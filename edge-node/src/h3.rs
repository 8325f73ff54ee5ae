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
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Buf, Bytes};
use h3::error::Code;
use h3::server::RequestStream;
use http::{HeaderMap, Method, StatusCode};
use outpost_runtime::{BodyError, RequestBody, ResponseBody, WorkerRequest, WorkerResponse};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::convert::HOP_BY_HOP;
use crate::dispatch::Dispatcher;
use crate::routes::Routes;
use crate::server::ServerConfig;
use crate::tls::SniResolver;
use crate::traffic::Protocol;

/// How long a connection told to go away waits for the client to close
/// it once its last response is sent.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Request body chunks that may wait for the worker.
const REQUEST_CHUNKS_BUFFERED: usize = 8;

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

struct H3Node {
  routes: Routes,
  dispatcher: Arc<Dispatcher>,
  config: ServerConfig,
}

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
  let node = Arc::new(H3Node {
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
        connections.spawn(serve_connection(incoming, node.clone(), closing_rx.clone()));
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

async fn serve_connection(
  incoming: quinn::Incoming,
  node: Arc<H3Node>,
  mut closing: watch::Receiver<bool>,
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
  let mut h3 = match h3::server::Connection::new(h3_quinn::Connection::new(connection)).await {
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

/// Routes one request, streams its body to the worker and the worker's
/// response back.
async fn serve_request(
  node: &H3Node,
  request: http::Request<()>,
  stream: RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>,
) {
  let arrived = std::time::Instant::now();
  let (mut send, recv) = stream.split();
  let (parts, ()) = request.into_parts();
  let authority = parts
    .uri
    .authority()
    .map(|a| a.as_str().to_owned())
    .or_else(|| {
      parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
    })
    .unwrap_or_default();
  let host = authority
    .rsplit_once(':')
    .map_or(authority.as_str(), |(h, _)| h);
  let path = parts.uri.path().to_owned();
  let table = node.routes.current();
  // Answered here: no route, or a static asset.
  let worker = table.route(host, &path).map(str::to_owned);
  let early = match &worker {
    None => Some(WorkerResponse::text(
      StatusCode::NOT_FOUND,
      format!("No worker is routed for host {host:?} or path {path:?}.\n"),
    )),
    Some(worker) => table
      .assets_for(worker)
      .and_then(|site| site.answer(&parts.method, &path, parts.uri.query(), &parts.headers))
      .map(WorkerResponse::from),
  };
  let (Some(worker), None) = (worker, &early) else {
    if let Some(response) = early {
      node
        .config
        .traffic
        .record(Protocol::Http3, response.status, arrived.elapsed());
      respond(&mut send, response).await;
    }
    return;
  };
  let target = parts
    .uri
    .path_and_query()
    .map_or("/", |p| p.as_str())
    .to_owned();
  let head_only = parts.method == Method::HEAD;
  let mut parts = parts;
  parts.headers.insert("cf-ray", crate::convert::new_ray());
  let overflow = Arc::new(AtomicBool::new(false));
  let body = if has_no_body(&parts.method, &parts.headers) {
    RequestBody::Empty
  } else {
    let (tx, rx) = mpsc::channel(REQUEST_CHUNKS_BUFFERED);
    tokio::spawn(forward_body(
      recv,
      tx,
      node.config.max_body_bytes,
      overflow.clone(),
    ));
    RequestBody::Stream(rx)
  };
  let worker_request = WorkerRequest {
    method: parts.method,
    url: format!("https://{authority}{target}"),
    headers: parts.headers,
    body,
    cf: Some(crate::convert::request_cf(
      &node.config.colo,
      http::Version::HTTP_3,
      crate::convert::ConnectionInfo {
        tls: Some("TLSv1.3"),
        rtt_ms: None,
      },
    )),
    scheduled: None,
  };
  let response = node
    .dispatcher
    .executor_for(&worker)
    .dispatch(&worker, worker_request)
    .await;
  let response = match response {
    _ if overflow.load(Ordering::Relaxed) => {
      WorkerResponse::text(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.\n")
    }
    Ok(response) if matches!(response.body, ResponseBody::WebSocket(_)) => WorkerResponse::text(
      StatusCode::BAD_REQUEST,
      "WebSockets are not offered over HTTP/3.\n",
    ),
    Ok(response) if head_only => response.without_body(),
    Ok(response) => response,
    Err(err) => {
      tracing::error!(worker, "dispatch failed: {err}");
      WorkerResponse::text(
        StatusCode::SERVICE_UNAVAILABLE,
        "The worker is unavailable.\n",
      )
    }
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

async fn forward_body(
  mut recv: RecvHalf,
  tx: mpsc::Sender<Result<Bytes, BodyError>>,
  max_body: u64,
  overflow: Arc<AtomicBool>,
) {
  let mut received: u64 = 0;
  loop {
    let chunk = match recv.recv_data().await {
      Ok(Some(mut data)) => data.copy_to_bytes(data.remaining()),
      Ok(None) => return,
      Err(err) => {
        let _ = tx.send(Err(BodyError::Transport(err.to_string()))).await;
        return;
      }
    };
    received += chunk.len() as u64;
    if received > max_body {
      overflow.store(true, Ordering::Relaxed);
      recv.stop_sending(Code::H3_REQUEST_REJECTED);
      let _ = tx.send(Err(BodyError::TooLarge { limit: max_body })).await;
      return;
    }
    if tx.send(Ok(chunk)).await.is_err() {
      return; // the worker stopped reading
    }
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
