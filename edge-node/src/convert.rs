//! Conversion between hyper's types and the runtime's, with the body limit.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use outpost_runtime::{BodyError, RequestCf, ResponseBody, WorkerResponse};
use tokio::sync::mpsc;

use crate::pipeline::BodySource;

/// What a request's connection tells `request.cf`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ConnectionInfo {
  /// The TLS version's name in Workers' spelling, if behind TLS.
  pub tls: Option<&'static str>,
  /// The kernel's smoothed round-trip time of the TCP connection.
  pub rtt_ms: Option<u32>,
}

/// The kernel's smoothed round-trip time of a TCP connection, in
/// milliseconds (Linux's TCP_INFO); `None` where it cannot be read.
pub(crate) fn tcp_rtt_ms(stream: &tokio::net::TcpStream) -> Option<u32> {
  #[cfg(target_os = "linux")]
  {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain data, all-zero is a valid value, and
    // getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>()).ok()?;
    let rc = unsafe {
      libc::getsockopt(
        stream.as_raw_fd(),
        libc::IPPROTO_TCP,
        libc::TCP_INFO,
        (&mut info as *mut libc::tcp_info).cast(),
        &mut len,
      )
    };
    (rc == 0).then_some(info.tcpi_rtt / 1000)
  }
  #[cfg(not(target_os = "linux"))]
  {
    let _ = stream;
    None
  }
}

/// `request.cf` for a request over `version` on `connection`, at node
/// `colo`. What the node cannot know here (country, ASN) is left out
/// rather than guessed; the runtime makes it JSON only if it is read.
pub(crate) fn request_cf(
  colo: &Arc<str>,
  version: http::Version,
  connection: ConnectionInfo,
) -> RequestCf {
  let http_protocol = match version {
    http::Version::HTTP_09 => "HTTP/0.9",
    http::Version::HTTP_10 => "HTTP/1.0",
    http::Version::HTTP_2 => "HTTP/2",
    http::Version::HTTP_3 => "HTTP/3",
    _ => "HTTP/1.1",
  };
  RequestCf {
    colo: colo.clone(),
    http_protocol,
    tls_version: connection.tls,
    client_tcp_rtt: connection.rtt_ms,
  }
}

/// How Workers names a TLS version in `request.cf.tlsVersion`.
pub(crate) fn tls_version_name(version: Option<rustls::ProtocolVersion>) -> Option<&'static str> {
  Some(match version? {
    rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
    rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
    _ => "",
  })
}

/// A new `cf-ray` value: 16 hex digits, unique within the process and
/// unlikely to repeat across nodes.
pub(crate) fn new_ray() -> http::HeaderValue {
  use std::hash::BuildHasher;
  use std::sync::OnceLock;
  use std::sync::atomic::AtomicU64;
  static BASE: OnceLock<u64> = OnceLock::new();
  static NEXT: AtomicU64 = AtomicU64::new(0);
  let base = *BASE.get_or_init(|| std::hash::RandomState::new().hash_one(std::process::id()));
  let ray = base.wrapping_add(
    NEXT
      .fetch_add(1, Ordering::Relaxed)
      .wrapping_mul(0x9e37_79b9_7f4a_7c15),
  );
  http::HeaderValue::from_str(&format!("{ray:016x}")).unwrap_or(http::HeaderValue::from_static("0"))
}

/// hyper's request body as the pipeline reads it; trailers are skipped.
impl BodySource for Incoming {
  async fn next_chunk(&mut self) -> Option<Result<Bytes, String>> {
    loop {
      match self.frame().await? {
        Ok(frame) => {
          if let Ok(data) = frame.into_data() {
            return Some(Ok(data));
          }
        }
        Err(err) => return Some(Err(err.to_string())),
      }
    }
  }
}

/// A response body as hyper sends it.
pub(crate) enum EdgeBody {
  Full(Option<Bytes>),
  Stream(mpsc::Receiver<Result<Bytes, BodyError>>),
}

impl Body for EdgeBody {
  type Data = Bytes;
  type Error = BodyError;

  fn poll_frame(
    self: Pin<&mut Self>,
    cx: &mut Context<'_>,
  ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
    match self.get_mut() {
      EdgeBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
      EdgeBody::Stream(rx) => rx
        .poll_recv(cx)
        .map(|chunk| chunk.map(|c| c.map(Frame::data))),
    }
  }

  fn is_end_stream(&self) -> bool {
    matches!(self, EdgeBody::Full(None))
  }

  fn size_hint(&self) -> SizeHint {
    match self {
      EdgeBody::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
      EdgeBody::Full(None) => SizeHint::with_exact(0),
      EdgeBody::Stream(_) => SizeHint::default(),
    }
  }
}

pub(crate) const HOP_BY_HOP: [&str; 5] = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
];

/// Converts a worker's response for hyper.
pub(crate) fn to_hyper_response(response: WorkerResponse) -> http::Response<EdgeBody> {
  let body = match response.body {
    ResponseBody::Full(bytes) if bytes.is_empty() => EdgeBody::Full(None),
    ResponseBody::Full(bytes) => EdgeBody::Full(Some(bytes)),
    ResponseBody::Stream(rx) => EdgeBody::Stream(rx),
    // Only `websocket::accept` can answer with a WebSocket.
    ResponseBody::WebSocket(_) => {
      return platform_error(
        http::StatusCode::INTERNAL_SERVER_ERROR,
        "Unexpected WebSocket response.\n",
      );
    }
  };
  let mut headers = response.headers;
  // Connection-level headers belong to this hop, and HTTP/2 forbids them.
  for name in HOP_BY_HOP {
    headers.remove(name);
  }
  let mut out = http::Response::new(body);
  *out.status_mut() = response.status;
  *out.headers_mut() = headers;
  out
}

/// A short plain-text response for errors the platform itself reports.
pub(crate) fn platform_error(
  status: http::StatusCode,
  message: impl Into<Bytes>,
) -> http::Response<EdgeBody> {
  to_hyper_response(WorkerResponse::text(status, message))
}
