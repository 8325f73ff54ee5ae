//! Bodies across a service call: the caller's request body pumped from its
//! stream resource into a channel, and the callee's streamed response body
//! as a resource the caller's JS reads.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use deno_core::{
  AsyncRefCell, AsyncResult, BufView, CancelHandle, CancelTryFuture, RcRef, Resource,
};
use deno_error::JsErrorBox;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::ext::serve::{BodyError, RequestBody};

/// How many request chunks may wait for the callee.
const CHUNKS_BUFFERED: usize = 8;

/// The caller's request body for the callee: `first`, if given, then
/// `resource` (a ReadableStream JS turned into one) pumped, on the
/// caller's thread, into a channel.
pub(super) fn from_resource(resource: Rc<dyn Resource>, first: Option<Bytes>) -> RequestBody {
  let (tx, rx) = mpsc::channel(CHUNKS_BUFFERED);
  if let Some(first) = first {
    let _ = tx.try_send(Ok(first));
  }
  let mut stream = deno_fetch::ResourceToBodyAdapter::new(resource);
  tokio::task::spawn_local(async move {
    while let Some(chunk) = stream.next().await {
      let chunk = chunk.map_err(|err| BodyError::Transport(err.to_string()));
      let failed = chunk.is_err();
      if tx.send(chunk).await.is_err() || failed {
        return;
      }
    }
  });
  RequestBody::Stream(rx)
}

/// A callee's streamed response body, read by the caller's JS.
pub(super) struct ResponseStream {
  rx: AsyncRefCell<mpsc::Receiver<Result<Bytes, BodyError>>>,
  /// What is left of a chunk larger than the last read wanted.
  rest: RefCell<Bytes>,
  cancel: CancelHandle,
}

impl ResponseStream {
  pub(super) fn new(rx: mpsc::Receiver<Result<Bytes, BodyError>>) -> Self {
    Self {
      rx: AsyncRefCell::new(rx),
      rest: RefCell::new(Bytes::new()),
      cancel: CancelHandle::new(),
    }
  }
}

impl Resource for ResponseStream {
  fn name(&self) -> Cow<'_, str> {
    "outpostServiceResponse".into()
  }

  fn read(self: Rc<Self>, limit: usize) -> AsyncResult<BufView> {
    Box::pin(async move {
      let left = {
        let mut rest = self.rest.borrow_mut();
        let take = limit.min(rest.len());
        (take > 0).then(|| rest.split_to(take))
      };
      if let Some(bytes) = left {
        return Ok(BufView::from(bytes));
      }
      let cancel = RcRef::map(&self, |r| &r.cancel);
      let mut rx = RcRef::map(&self, |r| &r.rx).borrow_mut().await;
      let next = async { Ok::<_, JsErrorBox>(rx.recv().await) }
        .try_or_cancel(cancel)
        .await?;
      match next {
        Some(Ok(mut chunk)) => {
          if chunk.len() > limit {
            *self.rest.borrow_mut() = chunk.split_off(limit);
          }
          Ok(BufView::from(chunk))
        }
        Some(Err(err)) => Err(JsErrorBox::type_error(format!(
          "the service's body failed: {err}"
        ))),
        None => Ok(BufView::empty()),
      }
    })
  }

  fn close(self: Rc<Self>) {
    self.cancel.cancel();
  }
}
