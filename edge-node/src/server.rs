//! The HTTP server: HTTP/1.1 with keep-alive and HTTP/2 on one listener,
//! in cleartext (h2 by prior knowledge) or behind TLS (h2 by ALPN), with
//! request limits and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body::Body;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::admission::{Activity, Admitted, ConnectionCaps};
use crate::convert::{self, ConnectionInfo, EdgeBody};
use crate::dispatch::Dispatcher;
use crate::pipeline::{self, Arrival, Pipeline};
use crate::routes::Routes;
use crate::tls::{HelloHook, SniResolver};
use crate::traffic::{Protocol, Traffic};
use crate::websocket;
use outpost_runtime::ResponseBody;

/// Limits and timeouts of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
  /// Largest request head (request line plus headers) in bytes; beyond it
  /// the client gets 431.
  pub max_header_bytes: usize,
  /// Largest request body in bytes; beyond it the client gets 413.
  pub max_body_bytes: u64,
  /// How long a client may take to send a request head, and how long a
  /// connection may sit without a request before it is closed.
  pub header_read_timeout: Duration,
  /// Caps on open connections, in total and per client, shared by the
  /// node's servers.
  pub connection_caps: Arc<ConnectionCaps>,
  /// How long in-flight requests may run on after shutdown begins.
  pub shutdown_grace: Duration,
  /// The `alt-svc` header for HTTPS responses: where HTTP/3 is served
  /// ([`crate::h3::alt_svc`]).
  pub alt_svc: Option<http::HeaderValue>,
  /// Where requests are counted, shared by the node's servers.
  pub traffic: Arc<Traffic>,
  /// Whether a TLS handshake naming a host starts warming the isolate of
  /// the worker routed there.
  pub prewarm: bool,
  /// The node's name, which workers see as `request.cf.colo`.
  pub colo: Arc<str>,
  /// Whether `/__scheduled` and `/cdn-cgi/handler/scheduled` run the
  /// routed worker's `scheduled()` (`outpost dev` only).
  pub scheduled_endpoints: bool,
}

impl Default for ServerConfig {
  fn default() -> Self {
    Self {
      max_header_bytes: 64 * 1024,
      max_body_bytes: 100 * 1024 * 1024,
      header_read_timeout: Duration::from_secs(30),
      connection_caps: Arc::default(),
      shutdown_grace: Duration::from_secs(10),
      alt_svc: None,
      traffic: Arc::default(),
      prewarm: true,
      colo: "local".into(),
      scheduled_endpoints: false,
    }
  }
}

struct Node {
  /// `http` or `https`, for the URL the worker sees.
  scheme: &'static str,
  /// Added to every response: HTTPS advertises HTTP/3 with it.
  alt_svc: Option<http::HeaderValue>,
  /// What answers each request.
  pipeline: Pipeline,
  /// Raised when shutdown begins; each upgraded WebSocket holds a receiver
  /// until it has closed.
  sockets: tokio::sync::watch::Sender<bool>,
}

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `listener` until `shutdown` resolves, then stops accepting and
/// waits up to `config.shutdown_grace` for in-flight requests.
pub async fn run(
  listener: TcpListener,
  routes: Routes,
  dispatcher: Arc<Dispatcher>,
  config: ServerConfig,
  shutdown: impl Future<Output = ()>,
) {
  serve(listener, None, routes, dispatcher, config, shutdown).await;
}

/// As [`run`], with every connection behind TLS: certificates chosen by
/// SNI from `resolver`, h2 or http/1.1 by ALPN. While a handshake runs,
/// the isolate of the worker routed from its host name starts warming.
pub async fn run_tls(
  listener: TcpListener,
  resolver: Arc<SniResolver>,
  routes: Routes,
  dispatcher: Arc<Dispatcher>,
  config: ServerConfig,
  shutdown: impl Future<Output = ()>,
) {
  if config.prewarm {
    resolver.set_hello_hook(prewarm_hook(&routes, &dispatcher));
  }
  let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(resolver.server_config()));
  serve(
    listener,
    Some(acceptor),
    routes,
    dispatcher,
    config,
    shutdown,
  )
  .await;
}

/// Starts the isolate of the worker a host name routes to (Cloudflare's
/// zero-cold-start trick: the handshake hides the start).
fn prewarm_hook(routes: &Routes, dispatcher: &Arc<Dispatcher>) -> HelloHook {
  let (routes, dispatcher) = (routes.clone(), dispatcher.clone());
  Arc::new(move |host: &str| {
    let table = routes.current();
    if let Some(worker) = table.route(host, "/") {
      dispatcher.executor_for(worker).warm(worker);
    }
  })
}

async fn serve(
  listener: TcpListener,
  tls: Option<tokio_rustls::TlsAcceptor>,
  routes: Routes,
  dispatcher: Arc<Dispatcher>,
  config: ServerConfig,
  shutdown: impl Future<Output = ()>,
) {
  let mut builder = auto::Builder::new(TokioExecutor::new());
  builder
    .http1()
    .keep_alive(true)
    .timer(TokioTimer::new())
    .header_read_timeout(config.header_read_timeout)
    .max_buf_size(config.max_header_bytes.max(8192));
  builder
    .http2()
    .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX));
  let grace = config.shutdown_grace;
  config
    .traffic
    .watch_connections(config.connection_caps.clone());
  let (sockets, _) = tokio::sync::watch::channel(false);
  let node = Arc::new(Node {
    scheme: if tls.is_some() { "https" } else { "http" },
    alt_svc: tls.as_ref().and(config.alt_svc.clone()),
    pipeline: Pipeline {
      routes,
      dispatcher,
      config,
    },
    sockets,
  });
  // Raised when shutdown begins; each connection holds a receiver until
  // it has closed.
  let (closing, _) = tokio::sync::watch::channel(false);
  tokio::pin!(shutdown);
  loop {
    let (stream, peer) = tokio::select! {
      accepted = accept_or_back_off(&listener, "HTTP") => match accepted {
        Some(accepted) => accepted,
        None => continue,
      },
      () = &mut shutdown => break,
    };
    let caps = &node.pipeline.config.connection_caps;
    let Some(admitted) = caps.admit(peer.ip()) else {
      tracing::debug!(%peer, "connection refused: the connection cap is reached");
      continue;
    };
    let _ = stream.set_nodelay(true);
    let mut accepted = Accepted {
      peer,
      // After the handshake the kernel has its first RTT sample.
      info: ConnectionInfo {
        tls: None,
        rtt_ms: convert::tcp_rtt_ms(&stream),
      },
      _admitted: admitted,
      closing: closing.subscribe(),
    };
    if let Some(acceptor) = &tls {
      let (acceptor, node, builder) = (acceptor.clone(), node.clone(), builder.clone());
      tokio::spawn(async move {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
          Ok(Ok(stream)) => {
            accepted.info = ConnectionInfo {
              tls: convert::tls_version_name(stream.get_ref().1.protocol_version()),
              rtt_ms: convert::tcp_rtt_ms(stream.get_ref().0),
            };
            serve_connection(stream, accepted, node, builder).await
          }
          Ok(Err(err)) => tracing::debug!(%peer, "TLS handshake failed: {err}"),
          Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
      });
      continue;
    }
    let Some(executor) = node
      .pipeline
      .dispatcher
      .executor_for_connection(&node.pipeline.routes)
      .cloned()
    else {
      tokio::spawn(serve_connection(
        stream,
        accepted,
        node.clone(),
        builder.clone(),
      ));
      continue;
    };
    // Served on the worker's executor thread, requests reach its isolate
    // without waking another thread. The socket moves as a std stream and
    // joins that thread's reactor.
    let stream = match stream.into_std() {
      Ok(stream) => stream,
      Err(err) => {
        tracing::warn!(%peer, "cannot hand over the connection: {err}");
        continue;
      }
    };
    let (node, builder) = (node.clone(), builder.clone());
    let spawned = executor.spawn(move || async move {
      match tokio::net::TcpStream::from_std(stream) {
        Ok(stream) => serve_connection(stream, accepted, node, builder).await,
        Err(err) => tracing::warn!(%peer, "cannot serve the connection: {err}"),
      }
    });
    if spawned.is_err() {
      tracing::error!(%peer, "the executor thread has stopped; dropping the connection");
    }
  }
  drop(listener);
  tracing::info!("shutting down: waiting up to {grace:?} for in-flight requests");
  closing.send_replace(true);
  if tokio::time::timeout(grace, closing.closed()).await.is_err() {
    tracing::warn!("in-flight requests were still running at the shutdown deadline");
  }
  // Upgraded WebSockets are no longer hyper's: close them (1001) and wait
  // for their peers' answers within the same grace.
  node.sockets.send_replace(true);
  if tokio::time::timeout(grace, node.sockets.closed())
    .await
    .is_err()
  {
    tracing::warn!("WebSockets were still open at the shutdown deadline");
  }
}

/// A connection the accept loop has taken on.
struct Accepted {
  peer: std::net::SocketAddr,
  /// What `request.cf` says of the connection.
  info: ConnectionInfo,
  /// Its place under the connection caps, freed when it closes.
  _admitted: Admitted,
  /// Raised when the server shuts down.
  closing: tokio::sync::watch::Receiver<bool>,
}

/// Serves one connection until it closes, shutdown ends it, or it has gone
/// `header_read_timeout` without a request (HTTP/2, or a connection that
/// never spoke; hyper's own timer covers HTTP/1.1 heads).
async fn serve_connection<S>(
  stream: S,
  accepted: Accepted,
  node: Arc<Node>,
  builder: auto::Builder<TokioExecutor>,
) where
  S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
  let Accepted {
    peer,
    info,
    _admitted,
    mut closing,
  } = accepted;
  let activity = Arc::new(Activity::new());
  let requests = activity.clone();
  let idle_timeout = node.pipeline.config.header_read_timeout;
  let service = service_fn(move |req| {
    let node = node.clone();
    let in_flight = requests.begin();
    async move {
      let _in_flight = in_flight;
      let (arrived, protocol) = (Instant::now(), Protocol::of(req.version()));
      let mut response = handle(&node, req, info).await;
      node
        .pipeline
        .config
        .traffic
        .record(protocol, response.status(), arrived.elapsed());
      if let Some(alt_svc) = &node.alt_svc {
        response
          .headers_mut()
          .insert(http::header::ALT_SVC, alt_svc.clone());
      }
      Ok::<_, Infallible>(response)
    }
  });
  let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
  tokio::pin!(conn);
  let mut ending = false;
  loop {
    tokio::select! {
      ended = conn.as_mut() => {
        if let Err(err) = ended {
          tracing::debug!(%peer, "connection ended with an error: {err}");
        }
        return;
      }
      _ = closing.changed(), if !ending => {
        ending = true;
        conn.as_mut().graceful_shutdown();
      }
      () = activity.idle_for(idle_timeout), if !ending => {
        tracing::debug!(%peer, "closing a connection idle for {idle_timeout:?}");
        ending = true;
        conn.as_mut().graceful_shutdown();
      }
    }
  }
}

/// HTTP/1.1 and HTTP/2's adapter to the pipeline: the body streamed from
/// hyper, WebSocket upgrades accepted.
async fn handle(
  node: &Node,
  mut req: http::Request<Incoming>,
  info: ConnectionInfo,
) -> http::Response<EdgeBody> {
  let span = tracing::debug_span!("request", method = %req.method(), uri = %req.uri());
  async move {
    let upgrade = websocket::take_upgrade(&mut req);
    let (head, body) = req.into_parts();
    let source = (!body.is_end_stream()).then_some(body);
    let (body, overflow) = pipeline::stream_body(source, node.pipeline.config.max_body_bytes);
    let arrival = Arrival {
      head,
      body,
      overflow,
      scheme: node.scheme,
      info,
    };
    let response = node.pipeline.serve(arrival).await;
    if matches!(response.body, ResponseBody::WebSocket(_)) {
      return websocket::accept(upgrade, response, node.sockets.subscribe());
    }
    convert::to_hyper_response(response)
  }
  .instrument(span)
  .await
}

/// Accepts a connection; on failure (out of file descriptors and the
/// like) logs, waits a little so the loop does not spin, and gives `None`.
pub(crate) async fn accept_or_back_off(
  listener: &tokio::net::TcpListener,
  what: &str,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
  match listener.accept().await {
    Ok(accepted) => Some(accepted),
    Err(err) => {
      tracing::warn!("{what} accept failed: {err}");
      tokio::time::sleep(std::time::Duration::from_millis(50)).await;
      None
    }
  }
}
