//! Live logs from this node (`outpost tail`): [`TailHub`] collects the
//! console lines, uncaught exceptions and request summaries of the workers
//! someone tails, and forwards them to the control plane on a logs stream
//! of the sync connection.
//!
//! Nothing is collected while nobody tails (the control plane says who
//! does, [`TailHub::set_tailed`]). The buffer is bounded: an event that
//! finds it full is dropped and counted, and the count is reported in the
//! stream, so a worker logging in a tight loop never blocks a request.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use outpost_protocol::sync::{StreamOpen, write_frame};
use outpost_protocol::tail::{TailBatch, TailEvent, TailKind};
use outpost_runtime::{LogLevel, LogSink, WorkerLogLine, WorkerRequestLine};
use tokio::sync::{Mutex, mpsc, watch};

/// Events that may wait to be sent.
pub const BUFFERED_EVENTS: usize = 2048;
/// The most events one frame carries.
const BATCH: usize = 256;

/// A worker's name and version from its executor name (`shop@3`).
fn split_name(executor_name: &str) -> (&str, Option<u64>) {
  match executor_name.rsplit_once('@') {
    Some((worker, number)) => match number.parse() {
      Ok(number) => (worker, Some(number)),
      Err(_) => (executor_name, None),
    },
    None => (executor_name, None),
  }
}

fn now_ms() -> u64 {
  std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The node's collector of tailed events.
#[derive(Debug)]
pub struct TailHub {
  /// Whether anyone tails anything: the one check made per line otherwise.
  any: AtomicBool,
  tailed: RwLock<HashSet<String>>,
  events: mpsc::Sender<TailEvent>,
  pending: Mutex<Option<mpsc::Receiver<TailEvent>>>,
  dropped: AtomicU64,
  link: watch::Sender<Option<quinn::Connection>>,
}

impl Default for TailHub {
  fn default() -> Self {
    let (events, pending) = mpsc::channel(BUFFERED_EVENTS);
    Self {
      any: AtomicBool::new(false),
      tailed: RwLock::default(),
      events,
      pending: Mutex::new(Some(pending)),
      dropped: AtomicU64::new(0),
      link: watch::Sender::new(None),
    }
  }
}

impl TailHub {
  /// Collects for exactly `workers` from now on.
  pub fn set_tailed(&self, workers: Vec<String>) {
    self.any.store(!workers.is_empty(), Ordering::Relaxed);
    if let Ok(mut tailed) = self.tailed.write() {
      *tailed = workers.into_iter().collect();
    }
  }

  /// Sets the connection to the control plane (`None` when it is lost).
  /// Tailing ends with the connection; the control plane says again who
  /// tails when it returns.
  pub fn set_link(&self, connection: Option<quinn::Connection>) {
    if connection.is_none() {
      self.set_tailed(Vec::new());
    }
    self.link.send_replace(connection);
  }

  /// Events dropped for a full buffer, since the node started.
  pub fn dropped(&self) -> u64 {
    self.dropped.load(Ordering::Relaxed)
  }

  /// Whether events of `executor_name`'s worker are wanted now.
  pub fn wants_worker(&self, executor_name: &str) -> bool {
    if !self.any.load(Ordering::Relaxed) {
      return false;
    }
    let (worker, _) = split_name(executor_name);
    self
      .tailed
      .read()
      .map(|tailed| tailed.contains(worker))
      .unwrap_or(false)
  }

  fn push(&self, executor_name: &str, ray: Option<String>, kind: TailKind) {
    let (worker, version) = split_name(executor_name);
    let event = TailEvent {
      time_ms: now_ms(),
      worker: worker.to_owned(),
      version,
      edge: String::new(),
      ray,
      kind,
    };
    if self.events.try_send(event).is_err() {
      self.dropped.fetch_add(1, Ordering::Relaxed);
    }
  }

  /// Sends collected events to the control plane until the hub is
  /// dropped; a batch that cannot be sent (no connection, a broken stream)
  /// is counted as dropped. Call once; later calls return at once.
  pub async fn forward(self: Arc<Self>) {
    let Some(mut pending) = self.pending.lock().await.take() else {
      return;
    };
    let mut link = self.link.subscribe();
    let mut stream: Option<(quinn::Connection, quinn::SendStream)> = None;
    let mut reported = 0;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
      if pending.recv_many(&mut batch, BATCH).await == 0 {
        return;
      }
      let dropped = self.dropped();
      if dropped > reported {
        let first = batch.first().map(|e| e.worker.clone()).unwrap_or_default();
        batch.push(TailEvent {
          time_ms: now_ms(),
          worker: first,
          version: None,
          edge: String::new(),
          ray: None,
          kind: TailKind::Dropped {
            count: dropped - reported,
          },
        });
        reported = dropped;
      }
      let connection = link.borrow_and_update().clone();
      let Some(connection) = connection else {
        self
          .dropped
          .fetch_add(batch.len() as u64, Ordering::Relaxed);
        batch.clear();
        continue;
      };
      if stream
        .as_ref()
        .is_none_or(|(open, _)| open.stable_id() != connection.stable_id())
      {
        stream = open_logs(&connection).await.map(|send| (connection, send));
      }
      let frame = TailBatch {
        events: std::mem::take(&mut batch),
      };
      let sent = match &mut stream {
        Some((_, send)) => write_frame(send, &frame).await.is_ok(),
        None => false,
      };
      if !sent {
        stream = None;
        self
          .dropped
          .fetch_add(frame.events.len() as u64, Ordering::Relaxed);
      }
    }
  }
}

async fn open_logs(connection: &quinn::Connection) -> Option<quinn::SendStream> {
  let (mut send, _recv) = connection.open_bi().await.ok()?;
  write_frame(&mut send, &StreamOpen::Logs).await.ok()?;
  Some(send)
}

impl LogSink for TailHub {
  fn wants(&self, worker: &str) -> bool {
    self.wants_worker(worker)
  }

  fn request(&self, line: WorkerRequestLine) {
    let kind = TailKind::Request {
      method: line.method,
      url: line.url,
      status: line.status,
      cpu_ms: line.cpu.as_secs_f64() * 1000.0,
      wall_ms: u64::try_from(line.wall.as_millis()).unwrap_or(u64::MAX),
      outcome: line.outcome.to_owned(),
    };
    self.push(&line.worker, line.ray, kind);
  }

  fn log(&self, line: WorkerLogLine) {
    let level = match line.level {
      LogLevel::Debug => "debug",
      LogLevel::Info => "info",
      LogLevel::Warn => "warn",
      LogLevel::Error => "error",
    };
    let kind = TailKind::Log {
      level: level.to_owned(),
      message: line.message,
    };
    self.push(&line.worker, line.ray, kind);
  }
}
