//! The firing desk: hands cron firings to the edge nodes connected to this
//! process and routes their answers back to whoever waits for them.
//!
//! Each sync connection attaches while it lives; the scheduler hands a
//! firing to one attached node and waits. A node whose connection ends
//! takes its unanswered firings with it, and the waiter learns the firing
//! was lost, to try another node.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use outpost_protocol::sync::{Firing, FiringResult};
use tokio::sync::{mpsc, oneshot};

/// The node did not answer: its connection ended first.
#[derive(Debug, thiserror::Error)]
#[error("edge node {0} went away before answering")]
pub struct FiringLost(pub String);

struct Attached {
  /// Tells the connections of one node apart, so an old one ending does
  /// not detach its successor.
  serial: u64,
  firings: mpsc::UnboundedSender<Firing>,
}

struct Waiter {
  node: String,
  answer: oneshot::Sender<FiringResult>,
}

/// Counts for `/metrics`.
#[derive(Default)]
pub struct FiringCounts {
  /// Firings whose handler completed.
  pub ok: AtomicU64,
  /// Firings whose handler threw (or was missing).
  pub failed: AtomicU64,
  /// Milliseconds spent running firings, summed.
  pub duration_ms: AtomicU64,
  /// Milliseconds from scheduled times to starts, summed.
  pub delay_ms: AtomicU64,
}

/// The attached nodes and the firings waiting for their answers.
#[derive(Default)]
pub struct FiringDesk {
  serial: AtomicU64,
  attached: Mutex<HashMap<String, Attached>>,
  waiting: Mutex<HashMap<String, Waiter>>,
  /// What the firings recorded here came to.
  pub counts: FiringCounts,
}

/// A node's attachment, undone when dropped.
pub struct Attachment<'a> {
  desk: &'a FiringDesk,
  node: String,
  serial: u64,
}

impl Drop for Attachment<'_> {
  fn drop(&mut self) {
    self.desk.detach(&self.node, self.serial);
  }
}

impl FiringDesk {
  /// Attaches `node`'s connection: firings for it arrive on the receiver
  /// while the attachment lives.
  pub fn attach(&self, node: &str) -> (mpsc::UnboundedReceiver<Firing>, Attachment<'_>) {
    let (firings, receiver) = mpsc::unbounded_channel();
    let serial = self.serial.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut attached) = self.attached.lock() {
      attached.insert(node.to_owned(), Attached { serial, firings });
    }
    let attachment = Attachment {
      desk: self,
      node: node.to_owned(),
      serial,
    };
    (receiver, attachment)
  }

  fn detach(&self, node: &str, serial: u64) {
    if let Ok(mut attached) = self.attached.lock()
      && attached.get(node).is_some_and(|a| a.serial == serial)
    {
      attached.remove(node);
    }
    // Their waiters hear the firing was lost (the sender drops).
    if let Ok(mut waiting) = self.waiting.lock() {
      waiting.retain(|_, waiter| waiter.node != node);
    }
  }

  /// The nodes attached now, sorted.
  pub fn nodes(&self) -> Vec<String> {
    let mut nodes: Vec<String> = self
      .attached
      .lock()
      .map(|attached| attached.keys().cloned().collect())
      .unwrap_or_default();
    nodes.sort();
    nodes
  }

  /// Hands `firing` to `node` and waits for its answer.
  pub async fn hand(&self, node: &str, firing: Firing) -> Result<FiringResult, FiringLost> {
    let lost = || FiringLost(node.to_owned());
    let (answer, answered) = oneshot::channel();
    let id = firing.id();
    {
      let attached = self.attached.lock().map_err(|_| lost())?;
      let target = attached.get(node).ok_or_else(lost)?;
      let mut waiting = self.waiting.lock().map_err(|_| lost())?;
      waiting.insert(
        id.clone(),
        Waiter {
          node: node.to_owned(),
          answer,
        },
      );
      if target.firings.send(firing).is_err() {
        waiting.remove(&id);
        return Err(lost());
      }
    }
    answered.await.map_err(|_| lost())
  }

  /// Passes `node`'s answer to its waiter; false if nobody waits for it
  /// (a process that restarted since it handed the firing out).
  pub fn answered(&self, node: &str, result: FiringResult) -> bool {
    let waiter = self.waiting.lock().ok().and_then(|mut waiting| {
      let id = result.firing.id();
      match waiting.get(&id) {
        Some(waiter) if waiter.node == node => waiting.remove(&id),
        _ => None,
      }
    });
    match waiter {
      Some(waiter) => waiter.answer.send(result).is_ok(),
      None => false,
    }
  }
}
