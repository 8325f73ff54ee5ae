//! A plain HTTP origin on 127.0.0.1 port 0 (hyper), for workers' outbound
//! `fetch()` to reach.
//!
//! - `/hello`: a fixed body.
//! - `/headers`: the request's `user-agent`, `content-length` and
//!   `transfer-encoding`, one per line.
//! - `/echo`: the request body streamed back, chunk by chunk.
//! - `/gated`: `first\n`, then `second\n` once the test opens [`Origin::gate`].
//! - `/page`: an HTML page whose second half waits for the gate, like `/gated`.
//! - `/redirect?status=<code>&to=<url>`: a redirect.
//! - `/slow`: no answer for a minute.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, BodyStream, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;

type Body = BoxBody<Bytes, hyper::Error>;

/// A running origin; it stops with the test's runtime.
pub struct Origin {
  /// Where it listens.
  pub addr: SocketAddr,
  /// Opened by the test to let `/gated` send its second chunk.
  pub gate: Arc<Notify>,
}

impl Origin {
  /// Starts an origin on 127.0.0.1 port 0.
  pub async fn start() -> Self {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
      .await
      .expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    let gate = Arc::new(Notify::new());
    let shared = gate.clone();
    tokio::spawn(async move {
      while let Ok((stream, _)) = listener.accept().await {
        let gate = shared.clone();
        tokio::spawn(async move {
          let service = hyper::service::service_fn(move |request| answer(request, gate.clone()));
          let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
        });
      }
    });
    Self { addr, gate }
  }

  /// `path` on this origin, by the name `localhost`.
  pub fn by_name(&self, path: &str) -> String {
    format!("http://localhost:{}{path}", self.addr.port())
  }

  /// `path` on this origin, by its address.
  pub fn by_address(&self, path: &str) -> String {
    format!("http://{}{path}", self.addr)
  }
}

fn full(text: impl Into<Bytes>) -> Body {
  Full::new(text.into())
    .map_err(|never| match never {})
    .boxed()
}

fn query(request: &Request<Incoming>, key: &str) -> Option<String> {
  url::form_urlencoded::parse(request.uri().query()?.as_bytes())
    .find(|(k, _)| k == key)
    .map(|(_, v)| v.into_owned())
}

/// The halves of `/page`.
pub const PAGE_HEAD: &str = "<!DOCTYPE html><html><head><title>Old title</title></head>\
  <body><a href=\"http://old.example/a\">a link</a><p>first half</p>";
/// The second half of `/page`, sent once the gate opens.
pub const PAGE_TAIL: &str = "<p>second half</p><img src=\"tracker.gif\"></body></html>";

/// A body of `first`, then `second` once `gate` opens.
fn gated(first: &'static str, second: &'static str, gate: Arc<Notify>) -> Response<Body> {
  let chunks = futures::stream::unfold(0, move |sent| {
    let gate = gate.clone();
    async move {
      match sent {
        0 => Some((Ok(Frame::data(Bytes::from(first))), 1)),
        1 => {
          gate.notified().await;
          Some((Ok(Frame::data(Bytes::from(second))), 2))
        }
        _ => None,
      }
    }
  });
  Response::new(BodyExt::boxed(StreamBody::new(Box::pin(chunks))))
}

async fn answer(
  request: Request<Incoming>,
  gate: Arc<Notify>,
) -> Result<Response<Body>, Infallible> {
  let header = |name: &str| {
    request
      .headers()
      .get(name)
      .and_then(|v| v.to_str().ok())
      .unwrap_or("-")
      .to_owned()
  };
  let response = match request.uri().path() {
    "/hello" => Response::new(full("hello from origin")),
    "/headers" => Response::new(full(format!(
      "user-agent: {}\ncontent-length: {}\ntransfer-encoding: {}\n",
      header("user-agent"),
      header("content-length"),
      header("transfer-encoding")
    ))),
    "/echo" => {
      let frames = BodyStream::new(request.into_body());
      Response::new(BodyExt::boxed(StreamBody::new(frames)))
    }
    "/gated" => gated("first\n", "second\n", gate),
    "/page" => {
      let mut response = gated(PAGE_HEAD, PAGE_TAIL, gate);
      response.headers_mut().insert(
        "content-type",
        "text/html; charset=utf-8".parse().expect("valid"),
      );
      response
    }
    "/redirect" => {
      let status = query(&request, "status")
        .and_then(|s| s.parse().ok())
        .unwrap_or(302);
      Response::builder()
        .status(status)
        .header("location", query(&request, "to").unwrap_or_default())
        .body(full(""))
        .expect("a valid redirect")
    }
    "/slow" => {
      tokio::time::sleep(Duration::from_secs(60)).await;
      Response::new(full("too late"))
    }
    _ => Response::builder()
      .status(404)
      .body(full("no such path"))
      .expect("a valid 404"),
  };
  Ok(response)
}
