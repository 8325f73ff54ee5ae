//! The ops behind `HTMLRewriter.transform`: start a rewriting session, feed
//! it the document, take its events, and answer the handler events.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc as sync_mpsc;

use deno_core::{AsyncRefCell, OpState, RcRef, Resource, ResourceId, op2};
use tokio::sync::mpsc;

use super::error::HtmlRewriterError;
use super::session::{self, Event, Input, Mutation, Plan, Reply};

/// Events a session may have queued for JS before it waits.
const EVENT_QUEUE: usize = 16;
/// Input chunks queued for the rewriter thread.
const INPUT_QUEUE: usize = 4;

/// The isolate's end of one session.
struct RewriterResource {
  input: RefCell<Option<mpsc::Sender<Input>>>,
  events: AsyncRefCell<mpsc::Receiver<Event>>,
  replies: sync_mpsc::Sender<Reply>,
}

impl Resource for RewriterResource {
  fn name(&self) -> std::borrow::Cow<'_, str> {
    "htmlRewriter".into()
  }
}

fn session(state: &OpState, rid: ResourceId) -> Result<Rc<RewriterResource>, HtmlRewriterError> {
  state
    .resource_table
    .get::<RewriterResource>(rid)
    .map_err(|_| HtmlRewriterError::Finished)
}

/// Checks a selector when `on()` is called, so a bad one throws there.
#[op2(fast)]
pub fn op_html_rewriter_check_selector(#[string] selector: &str) -> Result<(), HtmlRewriterError> {
  session::parse_selector(selector)
    .map(drop)
    .map_err(|reason| HtmlRewriterError::Selector {
      selector: selector.to_owned(),
      reason,
    })
}

/// Starts a session for `plan` on a thread of the executor's blocking pool
/// (tokio's, bounded), where it waits for JS between handler events.
#[op2]
#[smi]
pub fn op_html_rewriter_start(
  state: &mut OpState,
  #[serde] plan: Plan,
) -> Result<ResourceId, HtmlRewriterError> {
  let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
  let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
  let (replies_tx, replies_rx) = sync_mpsc::channel();
  let runtime = tokio::runtime::Handle::current();
  tokio::task::spawn_blocking(move || session::run(runtime, plan, input_rx, events_tx, replies_rx));
  Ok(state.resource_table.add(RewriterResource {
    input: RefCell::new(Some(input_tx)),
    events: AsyncRefCell::new(events_rx),
    replies: replies_tx,
  }))
}

/// Hands the rewriter the next bytes of the document. Resolves to false
/// once the rewriter has stopped and wants no more.
#[op2]
pub async fn op_html_rewriter_write(
  state: Rc<RefCell<OpState>>,
  #[smi] rid: ResourceId,
  #[buffer(copy)] chunk: Vec<u8>,
) -> Result<bool, HtmlRewriterError> {
  let resource = session(&state.borrow(), rid)?;
  let sender = resource.input.borrow().clone();
  let Some(sender) = sender else {
    return Ok(false);
  };
  Ok(sender.send(Input::Chunk(chunk.into())).await.is_ok())
}

/// Ends the document, or, with a `failure`, stops rewriting with it.
#[op2]
pub fn op_html_rewriter_end(
  state: &mut OpState,
  #[smi] rid: ResourceId,
  #[string] failure: Option<String>,
) -> Result<(), HtmlRewriterError> {
  let resource = session(state, rid)?;
  let sender = resource.input.borrow_mut().take();
  if let (Some(sender), Some(message)) = (sender, failure) {
    // A full queue means the rewriter is busy; it stops at the next event
    // when this side closes instead.
    let _ = sender.try_send(Input::Failed(message));
  }
  Ok(())
}

/// The session's next event.
#[op2]
#[serde]
pub async fn op_html_rewriter_next(
  state: Rc<RefCell<OpState>>,
  #[smi] rid: ResourceId,
) -> Result<Event, HtmlRewriterError> {
  let resource = session(&state.borrow(), rid)?;
  let mut events = RcRef::map(&resource, |r| &r.events).borrow_mut().await;
  Ok(events.recv().await.unwrap_or(Event::Done))
}

/// Answers the pending handler event: the handler finished with
/// `mutations`, or threw `failure`.
#[op2]
pub fn op_html_rewriter_reply(
  state: &mut OpState,
  #[smi] rid: ResourceId,
  #[serde] mutations: Vec<Mutation>,
  #[string] failure: Option<String>,
) -> Result<(), HtmlRewriterError> {
  let resource = session(state, rid)?;
  let reply = match failure {
    Some(message) => Reply::Failed(message),
    None => Reply::Applied(mutations),
  };
  resource
    .replies
    .send(reply)
    .map_err(|_| HtmlRewriterError::Finished)
}
