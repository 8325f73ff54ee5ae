//! One HTMLRewriter transform: lol_html on a thread of its own, talking to
//! the isolate through channels.
//!
//! lol_html calls its handlers synchronously, in the middle of parsing, and
//! the worker's handlers may be async. So the parser runs on its own thread:
//! at each match it sends the isolate an [`Event`] describing the matched
//! unit and blocks until JS replies with the [`Mutation`]s its handler
//! recorded, then applies them and parses on. Output goes to JS over the
//! same channel, in order.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc as sync_mpsc;
use std::time::Duration;

use bytes::Bytes;
use deno_core::ToJsBuffer;
use lol_html::html_content::{
  Comment, ContentType, Doctype, DocumentEnd, Element, EndTag, TextChunk,
};
use lol_html::{
  DocumentContentHandlers, ElementContentHandlers, HtmlRewriter, MemorySettings, Selector, Settings,
};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// What lol_html may buffer for one document (an unterminated tag or a
/// text node a handler needs whole); past it the transform fails.
const MAX_PARSER_MEMORY: usize = 16 << 20;

/// Which handlers a registration has, as bits.
pub mod kinds {
  /// `element` (on a selector) or `doctype` (on the document).
  pub const ELEMENT_OR_DOCTYPE: u8 = 1;
  /// `comments`.
  pub const COMMENTS: u8 = 2;
  /// `text`.
  pub const TEXT: u8 = 4;
  /// `end` (on the document).
  pub const END: u8 = 8;
}

/// What the rewriter asks of JS, or tells it.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Event {
  /// An element matched registration `on`.
  #[serde(rename_all = "camelCase")]
  Element {
    on: usize,
    tag: String,
    attributes: Vec<(String, String)>,
    namespace: &'static str,
    self_closing: bool,
    can_have_content: bool,
  },
  /// The end tag a handler asked for with `onEndTag` (handler `id`).
  EndTag { id: u32, name: String },
  /// A text chunk inside registration `on` (`None`: the document's).
  Text {
    on: Option<usize>,
    text: String,
    last: bool,
  },
  /// A comment inside registration `on` (`None`: the document's).
  Comment { on: Option<usize>, text: String },
  /// The doctype.
  #[serde(rename_all = "camelCase")]
  Doctype {
    name: Option<String>,
    public_id: Option<String>,
    system_id: Option<String>,
  },
  /// The end of the document.
  End,
  /// Rewritten bytes, in order. Needs no reply.
  Output { chunk: ToJsBuffer },
  /// Rewriting stopped on an error. The last event.
  Failed { message: String },
  /// Rewriting finished. The last event.
  Done,
}

/// One change a JS handler made to the unit it was given.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Mutation {
  Before { content: String, html: bool },
  After { content: String, html: bool },
  Prepend { content: String, html: bool },
  Append { content: String, html: bool },
  Replace { content: String, html: bool },
  SetInnerContent { content: String, html: bool },
  Remove,
  RemoveAndKeepContent,
  SetTagName { name: String },
  SetAttribute { name: String, value: String },
  RemoveAttribute { name: String },
  SetText { text: String },
  OnEndTag { id: u32 },
}

/// JS's answer to an event.
#[derive(Debug)]
pub enum Reply {
  /// The handler finished; apply these.
  Applied(Vec<Mutation>),
  /// The handler threw; stop rewriting.
  Failed(String),
}

/// Input from JS.
#[derive(Debug)]
pub enum Input {
  /// The next bytes of the document.
  Chunk(Bytes),
  /// Reading the document failed.
  Failed(String),
}

/// What to register with lol_html: selectors with their handler kinds, and
/// the document's handler kinds.
#[derive(Debug, Deserialize)]
pub struct Plan {
  /// `(selector, kinds)` per `on()` call, in order.
  pub elements: Vec<(String, u8)>,
  /// The kinds of the `onDocument()` handlers, OR-ed.
  pub document: u8,
}

/// A handler failure, carried through lol_html back out of `write`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Stop(String);

type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// How long a session waits for JS (input, a handler's answer, a reader
/// for its output) before it gives up, so that a stalled transform does
/// not hold a blocking-pool thread for ever.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

fn dropped() -> Stop {
  Stop("the rewritten response was dropped".into())
}

fn idle(what: &str) -> Stop {
  Stop(format!("{what} for {} s", IDLE_LIMIT.as_secs()))
}

/// The rewriter thread's end of the channels.
struct Bridge {
  /// The executor's runtime, whose timers bound each wait.
  runtime: Handle,
  events: mpsc::Sender<Event>,
  replies: sync_mpsc::Receiver<Reply>,
  /// Output not yet sent: lol_html hands it over in small pieces.
  pending: RefCell<Vec<u8>>,
}

impl Bridge {
  fn send(&self, event: Event) -> Result<(), Stop> {
    let sent = tokio::time::timeout(IDLE_LIMIT, self.events.send(event));
    match self.runtime.block_on(sent) {
      Ok(Ok(())) => Ok(()),
      Ok(Err(_)) => Err(dropped()),
      Err(_) => Err(idle("nothing read the rewritten body")),
    }
  }

  fn flush(&self) -> Result<(), Stop> {
    let chunk = std::mem::take(&mut *self.pending.borrow_mut());
    if chunk.is_empty() {
      return Ok(());
    }
    self.send(Event::Output {
      chunk: chunk.into(),
    })
  }

  /// Sends `event` and waits for JS's handler to finish with it.
  fn ask(&self, event: Event) -> Result<Vec<Mutation>, Stop> {
    self.flush()?;
    self.send(event)?;
    match self.replies.recv_timeout(IDLE_LIMIT) {
      Ok(Reply::Applied(mutations)) => Ok(mutations),
      Ok(Reply::Failed(message)) => Err(Stop(message)),
      Err(sync_mpsc::RecvTimeoutError::Timeout) => Err(idle("a handler did not finish")),
      Err(sync_mpsc::RecvTimeoutError::Disconnected) => Err(dropped()),
    }
  }
}

fn content_type(html: bool) -> ContentType {
  if html {
    ContentType::Html
  } else {
    ContentType::Text
  }
}

fn unsupported(unit: &str, mutation: &Mutation) -> Stop {
  Stop(format!("{mutation:?} cannot be applied to {unit}"))
}

fn apply_to_element(
  element: &mut Element<'_, '_>,
  mutations: Vec<Mutation>,
  bridge: &Rc<Bridge>,
) -> HandlerResult {
  for mutation in mutations {
    match mutation {
      Mutation::Before { content, html } => element.before(&content, content_type(html)),
      Mutation::After { content, html } => element.after(&content, content_type(html)),
      Mutation::Prepend { content, html } => element.prepend(&content, content_type(html)),
      Mutation::Append { content, html } => element.append(&content, content_type(html)),
      Mutation::Replace { content, html } => element.replace(&content, content_type(html)),
      Mutation::SetInnerContent { content, html } => {
        element.set_inner_content(&content, content_type(html))
      }
      Mutation::Remove => element.remove(),
      Mutation::RemoveAndKeepContent => element.remove_and_keep_content(),
      Mutation::SetTagName { name } => element.set_tag_name(&name)?,
      Mutation::SetAttribute { name, value } => element.set_attribute(&name, &value)?,
      Mutation::RemoveAttribute { name } => element.remove_attribute(&name),
      Mutation::OnEndTag { id } => {
        let bridge = bridge.clone();
        let tag = element.tag_name();
        let handlers = element
          .end_tag_handlers()
          .ok_or_else(|| Stop(format!("<{tag}> has no end tag")))?;
        handlers.push(Box::new(move |end: &mut EndTag<'_>| {
          let event = Event::EndTag {
            id,
            name: end.name(),
          };
          apply_to_end_tag(end, bridge.ask(event)?)
        }));
      }
      other @ Mutation::SetText { .. } => return Err(unsupported("an element", &other).into()),
    }
  }
  Ok(())
}

fn apply_to_end_tag(end: &mut EndTag<'_>, mutations: Vec<Mutation>) -> HandlerResult {
  for mutation in mutations {
    match mutation {
      Mutation::Before { content, html } => end.before(&content, content_type(html)),
      Mutation::After { content, html } => end.after(&content, content_type(html)),
      Mutation::Remove => end.remove(),
      Mutation::SetTagName { name } => end.set_name_str(name),
      other => return Err(unsupported("an end tag", &other).into()),
    }
  }
  Ok(())
}

fn apply_to_text(text: &mut TextChunk<'_>, mutations: Vec<Mutation>) -> HandlerResult {
  for mutation in mutations {
    match mutation {
      Mutation::Before { content, html } => text.before(&content, content_type(html)),
      Mutation::After { content, html } => text.after(&content, content_type(html)),
      Mutation::Replace { content, html } => text.replace(&content, content_type(html)),
      Mutation::Remove => text.remove(),
      other => return Err(unsupported("a text chunk", &other).into()),
    }
  }
  Ok(())
}

fn apply_to_comment(comment: &mut Comment<'_>, mutations: Vec<Mutation>) -> HandlerResult {
  for mutation in mutations {
    match mutation {
      Mutation::Before { content, html } => comment.before(&content, content_type(html)),
      Mutation::After { content, html } => comment.after(&content, content_type(html)),
      Mutation::Replace { content, html } => comment.replace(&content, content_type(html)),
      Mutation::Remove => comment.remove(),
      Mutation::SetText { text } => comment.set_text(&text)?,
      other => return Err(unsupported("a comment", &other).into()),
    }
  }
  Ok(())
}

fn apply_to_end(end: &mut DocumentEnd<'_>, mutations: Vec<Mutation>) -> HandlerResult {
  for mutation in mutations {
    match mutation {
      Mutation::Append { content, html } => end.append(&content, content_type(html)),
      other => return Err(unsupported("the document end", &other).into()),
    }
  }
  Ok(())
}

fn text_event(on: Option<usize>, text: &TextChunk<'_>) -> Event {
  Event::Text {
    on,
    text: text.as_str().to_owned(),
    last: text.last_in_text_node(),
  }
}

fn element_handlers(on: usize, kinds: u8, bridge: &Rc<Bridge>) -> ElementContentHandlers<'static> {
  let mut handlers = ElementContentHandlers::default();
  if kinds & kinds::ELEMENT_OR_DOCTYPE != 0 {
    let bridge = bridge.clone();
    handlers = handlers.element(move |element: &mut Element<'_, '_>| {
      let event = Event::Element {
        on,
        tag: element.tag_name(),
        attributes: element
          .attributes()
          .iter()
          .map(|a| (a.name(), a.value()))
          .collect(),
        namespace: element.namespace_uri(),
        self_closing: element.is_self_closing(),
        can_have_content: element.can_have_content(),
      };
      let mutations = bridge.ask(event)?;
      apply_to_element(element, mutations, &bridge)
    });
  }
  if kinds & kinds::COMMENTS != 0 {
    let bridge = bridge.clone();
    handlers = handlers.comments(move |comment: &mut Comment<'_>| {
      let event = Event::Comment {
        on: Some(on),
        text: comment.text(),
      };
      apply_to_comment(comment, bridge.ask(event)?)
    });
  }
  if kinds & kinds::TEXT != 0 {
    let bridge = bridge.clone();
    handlers = handlers.text(move |text: &mut TextChunk<'_>| {
      apply_to_text(text, bridge.ask(text_event(Some(on), text))?)
    });
  }
  handlers
}

fn document_handlers(kinds: u8, bridge: &Rc<Bridge>) -> DocumentContentHandlers<'static> {
  let mut handlers = DocumentContentHandlers::default();
  if kinds & kinds::ELEMENT_OR_DOCTYPE != 0 {
    let bridge = bridge.clone();
    handlers = handlers.doctype(move |doctype: &mut Doctype<'_>| {
      bridge.ask(Event::Doctype {
        name: doctype.name(),
        public_id: doctype.public_id(),
        system_id: doctype.system_id(),
      })?;
      Ok(())
    });
  }
  if kinds & kinds::COMMENTS != 0 {
    let bridge = bridge.clone();
    handlers = handlers.comments(move |comment: &mut Comment<'_>| {
      let event = Event::Comment {
        on: None,
        text: comment.text(),
      };
      apply_to_comment(comment, bridge.ask(event)?)
    });
  }
  if kinds & kinds::TEXT != 0 {
    let bridge = bridge.clone();
    handlers = handlers.text(move |text: &mut TextChunk<'_>| {
      apply_to_text(text, bridge.ask(text_event(None, text))?)
    });
  }
  if kinds & kinds::END != 0 {
    let bridge = bridge.clone();
    handlers =
      handlers.end(move |end: &mut DocumentEnd<'_>| apply_to_end(end, bridge.ask(Event::End)?));
  }
  handlers
}

/// Checks a selector the way the rewriter will read it.
pub fn parse_selector(selector: &str) -> Result<Selector, String> {
  selector.parse::<Selector>().map_err(|e| e.to_string())
}

/// Rewrites the document arriving on `input` as `plan` says, until the
/// input ends or either side goes away. Runs on the rewriter's own thread.
pub fn run(
  runtime: Handle,
  plan: Plan,
  mut input: mpsc::Receiver<Input>,
  events: mpsc::Sender<Event>,
  replies: sync_mpsc::Receiver<Reply>,
) {
  let bridge = Rc::new(Bridge {
    runtime,
    events,
    replies,
    pending: RefCell::new(Vec::new()),
  });
  let outcome = rewrite(&plan, &mut input, &bridge);
  let last = match outcome.and_then(|()| bridge.flush()) {
    Ok(()) => Event::Done,
    Err(Stop(message)) => Event::Failed { message },
  };
  // JS may be gone already; then nobody needs to hear it.
  let _ = bridge.send(last);
}

fn rewrite(
  plan: &Plan,
  input: &mut mpsc::Receiver<Input>,
  bridge: &Rc<Bridge>,
) -> Result<(), Stop> {
  let mut element_content_handlers = Vec::with_capacity(plan.elements.len());
  for (on, (selector, kinds)) in plan.elements.iter().enumerate() {
    let selector = parse_selector(selector).map_err(Stop)?;
    element_content_handlers.push((Cow::Owned(selector), element_handlers(on, *kinds, bridge)));
  }
  let settings = Settings {
    element_content_handlers,
    document_content_handlers: vec![document_handlers(plan.document, bridge)],
    memory_settings: MemorySettings {
      max_allowed_memory_usage: MAX_PARSER_MEMORY,
      ..MemorySettings::default()
    },
    ..Settings::new()
  };
  let sink = bridge.clone();
  let mut rewriter = HtmlRewriter::new(settings, move |bytes: &[u8]| {
    sink.pending.borrow_mut().extend_from_slice(bytes);
  });
  let failed = |err: lol_html::errors::RewritingError| Stop(err.to_string());
  loop {
    let next = tokio::time::timeout(IDLE_LIMIT, input.recv());
    let input = match bridge.runtime.block_on(next) {
      Ok(Some(input)) => input,
      Ok(None) => break,
      Err(_) => return Err(idle("the document stalled: no input")),
    };
    match input {
      Input::Chunk(bytes) => rewriter.write(&bytes).map_err(failed)?,
      Input::Failed(message) => return Err(Stop(message)),
    }
    bridge.flush()?;
  }
  rewriter.end().map_err(failed)
}
