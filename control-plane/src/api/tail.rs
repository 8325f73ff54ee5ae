//! `GET /v1/workers/{worker}/tail`: the worker's live events from every
//! edge connected to this control plane, one JSON object per line, for as
//! long as the client reads. The first line is `{"type":"tailing", ...}`;
//! a tail that falls behind gets a `dropped` event in place of what it
//! missed. Its count is of events here, so an edge's own `dropped` report
//! among them counts as one: the total a tail shows is a lower bound.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use outpost_protocol::tail::{TailEvent, TailKind};
use tokio::sync::{broadcast, mpsc};

use super::ApiBody;
use crate::app::ControlPlane;

/// Lines waiting for a slow client before the tail drops events.
const QUEUED_LINES: usize = 256;

fn line<T: serde::Serialize>(value: &T) -> Bytes {
  let mut bytes = serde_json::to_vec(value).unwrap_or_default();
  bytes.push(b'\n');
  Bytes::from(bytes)
}

/// The streamed response of a tail of `worker`.
pub(super) fn stream(app: &Arc<ControlPlane>, worker: String) -> Response<ApiBody> {
  let mut subscription = app.start_tail(&worker);
  let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUED_LINES);
  tokio::spawn(async move {
    let hello = serde_json::json!({ "type": "tailing", "worker": worker });
    if tx.send(line(&hello)).await.is_err() {
      return;
    }
    loop {
      let event = tokio::select! {
        event = subscription.events.recv() => event,
        () = tx.closed() => return,
      };
      let bytes = match event {
        Ok(event) if event.worker == worker => line(&*event),
        Ok(_) => continue,
        Err(broadcast::error::RecvError::Lagged(count)) => line(&TailEvent {
          time_ms: 0,
          worker: worker.clone(),
          version: None,
          edge: String::new(),
          ray: None,
          kind: TailKind::Dropped { count },
        }),
        Err(broadcast::error::RecvError::Closed) => return,
      };
      if tx.send(bytes).await.is_err() {
        return;
      }
    }
  });
  let frames = futures::stream::poll_fn(move |cx| {
    rx.poll_recv(cx)
      .map(|line| line.map(|bytes| Ok::<_, Infallible>(Frame::data(bytes))))
  });
  let mut response = Response::new(StreamBody::new(frames).boxed());
  response.headers_mut().insert(
    header::CONTENT_TYPE,
    header::HeaderValue::from_static("application/x-ndjson"),
  );
  response
}
