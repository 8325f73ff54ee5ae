//! Cron firings the control plane hands this node: each runs once here
//! even when handed again (after a reconnect), and its result goes back on
//! a stream of its own, kept until the control plane has taken it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use outpost_protocol::sync::{Firing, FiringResult, StreamOpen, write_frame};
use outpost_runtime::ScheduledEvent;

use crate::dispatch::Dispatcher;
use crate::scheduled::{now_ms, run_scheduled};

/// How many firings are remembered, to answer one handed twice.
const REMEMBERED: usize = 4096;

#[derive(Default)]
struct Memory {
  /// By firing id: `None` while it runs.
  results: HashMap<String, Option<FiringResult>>,
  order: VecDeque<String>,
  /// Results the control plane has not confirmed yet.
  unsent: Vec<FiringResult>,
}

/// The node's firings.
pub struct EdgeFirings {
  dispatcher: Arc<Dispatcher>,
  memory: Mutex<Memory>,
}

impl EdgeFirings {
  /// Firings run on `dispatcher`'s executors.
  pub fn new(dispatcher: Arc<Dispatcher>) -> Arc<Self> {
    Arc::new(Self {
      dispatcher,
      memory: Mutex::default(),
    })
  }

  /// Runs `firing` (unless it ran or runs already) and answers on
  /// `connection`.
  pub fn handle(self: &Arc<Self>, firing: Firing, connection: quinn::Connection) {
    let id = firing.id();
    let known = {
      let Ok(mut memory) = self.memory.lock() else {
        return;
      };
      match memory.results.get(&id) {
        Some(known) => Some(known.clone()),
        None => {
          memory.results.insert(id.clone(), None);
          memory.order.push_back(id);
          while memory.order.len() > REMEMBERED {
            if let Some(old) = memory.order.pop_front() {
              memory.results.remove(&old);
            }
          }
          None
        }
      }
    };
    let this = self.clone();
    match known {
      // Running: its result goes out when it ends.
      Some(None) => {}
      Some(Some(result)) => {
        tokio::spawn(async move { this.answer(result, &connection).await });
      }
      None => {
        tokio::spawn(async move {
          let result = this.run(firing).await;
          if let Ok(mut memory) = this.memory.lock()
            && let Some(slot) = memory.results.get_mut(&result.firing.id())
          {
            *slot = Some(result.clone());
          }
          this.answer(result, &connection).await;
        });
      }
    }
  }

  async fn run(&self, firing: Firing) -> FiringResult {
    let name = format!("{}@{}", firing.worker, firing.version);
    let delay_ms = now_ms().saturating_sub(firing.scheduled_ms);
    let event = ScheduledEvent {
      cron: firing.cron.clone(),
      scheduled_time_ms: firing.scheduled_ms,
    };
    let executor = self.dispatcher.executor_for(&name);
    let outcome = run_scheduled(executor, &name, event).await;
    FiringResult {
      firing,
      ok: outcome.ok,
      duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
      delay_ms,
    }
  }

  /// Sends `result`; kept for [`EdgeFirings::resend`] unless the control
  /// plane confirms it.
  async fn answer(&self, result: FiringResult, connection: &quinn::Connection) {
    if send(&result, connection).await.is_err()
      && let Ok(mut memory) = self.memory.lock()
    {
      memory.unsent.push(result);
    }
  }

  /// Sends the results a lost connection did not deliver, on `connection`.
  pub async fn resend(&self, connection: &quinn::Connection) {
    let unsent = match self.memory.lock() {
      Ok(mut memory) => std::mem::take(&mut memory.unsent),
      Err(_) => return,
    };
    for result in unsent {
      self.answer(result, connection).await;
    }
  }
}

/// One result on a stream of its own; done once the control plane has
/// recorded it and closed its side.
async fn send(result: &FiringResult, connection: &quinn::Connection) -> Result<(), String> {
  let (mut send, mut recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
  write_frame(
    &mut send,
    &StreamOpen::Fired {
      result: result.clone(),
    },
  )
  .await
  .map_err(|e| e.to_string())?;
  send.finish().map_err(|e| e.to_string())?;
  recv.read_to_end(64).await.map_err(|e| e.to_string())?;
  Ok(())
}
