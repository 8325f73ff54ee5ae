//! Cron triggers of deployed workers: every control plane replica runs
//! [`run`], and each firing runs once across all of them.
//!
//! - Each replica walks the triggers of the versions serving each worker
//!   and, as a firing's time comes, claims it in the store (the firing's
//!   primary key settles races) with a lease it renews while the firing
//!   runs.
//! - The claimant hands the firing to one edge node connected to it
//!   ([`crate::firings`]); if that node goes away first, to another; if
//!   none is left, it releases the claim for any replica to take.
//! - A replica that dies leaves its claims to lapse; any replica takes a
//!   lapsed claim over. After a restart a replica catches up on firings
//!   it missed within [`CATCH_UP`] from the last one claimed.
//! - Results are recorded once: in the store, `/metrics` and `outpost
//!   tail`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_protocol::Bundle;
use outpost_protocol::cron::CronTrigger;
use outpost_protocol::sync::{Firing, FiringResult};
use outpost_protocol::tail::{TailEvent, TailKind};

use crate::app::ControlPlane;
use crate::store::{FiringKey, StoreError};

/// How long a claim holds without renewal; a replica that dies holds its
/// firings this long at most.
pub const LEASE: Duration = Duration::from_secs(30);
/// How far back a replica starting up looks for firings it missed.
pub const CATCH_UP: Duration = Duration::from_secs(15 * 60);
/// How long a firing is given on a node before another is tried.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// How long firings are remembered.
const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest the loop sleeps: state changes and lapsed claims are
/// noticed within it.
const TICK: Duration = Duration::from_secs(1);

fn ms(duration: Duration) -> u64 {
  u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// What the scheduler takes the time from.
#[derive(Debug, Clone, Default)]
pub enum CronClock {
  /// The system clock.
  #[default]
  System,
  /// Milliseconds since the Unix epoch, read from a file each time (the
  /// system clock while it cannot be read): tests move it to run minutes
  /// of firings in seconds, across processes.
  File(PathBuf),
}

impl CronClock {
  /// Now, in milliseconds since the Unix epoch.
  pub fn now_ms(&self) -> u64 {
    let system = || {
      std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, ms)
    };
    match self {
      CronClock::System => system(),
      CronClock::File(path) => std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or_else(system),
    }
  }

  /// How long the loop may sleep before `due_ms`.
  fn wait_until(&self, now_ms: u64, due_ms: Option<u64>) -> Duration {
    match self {
      // A file clock jumps: look often.
      CronClock::File(_) => Duration::from_millis(50),
      CronClock::System => due_ms
        .map(|due| Duration::from_millis(due.saturating_sub(now_ms)))
        .unwrap_or(TICK)
        .min(TICK),
    }
  }
}

/// One trigger of a serving version.
#[derive(Clone)]
struct Trigger {
  worker: String,
  version: u64,
  cron: CronTrigger,
}

/// The replica's scheduler.
struct Scheduler {
  app: Arc<ControlPlane>,
  clock: CronClock,
  replica: String,
  /// Per (worker, pattern): the scheduled time up to which firings were
  /// started.
  done_up_to: HashMap<(String, String), u64>,
  /// Firings this replica runs now.
  running: Arc<Mutex<HashSet<FiringKey>>>,
  /// Crons of each bundle read so far, by hash.
  crons_of: HashMap<String, Vec<String>>,
  triggers: Vec<Trigger>,
  epoch: Option<u64>,
  next_prune_ms: u64,
}

/// Runs the cron triggers of every deployed worker until `shutdown`
/// resolves, on `app`'s cron clock, with `replica` naming this process in
/// its claims.
pub async fn run(app: Arc<ControlPlane>, replica: String, shutdown: impl Future<Output = ()>) {
  let mut epochs = app.watch_epoch();
  let mut scheduler = Scheduler {
    clock: app.cron_clock().clone(),
    app,
    replica,
    done_up_to: HashMap::new(),
    running: Arc::default(),
    crons_of: HashMap::new(),
    triggers: Vec::new(),
    epoch: None,
    next_prune_ms: 0,
  };
  tokio::pin!(shutdown);
  loop {
    let now = scheduler.clock.now_ms();
    let due = match scheduler.pass(now).await {
      Ok(due) => due,
      Err(err) => {
        tracing::warn!("cron scheduler: {err}");
        None
      }
    };
    let wait = scheduler.clock.wait_until(now, due);
    tokio::select! {
      () = &mut shutdown => return,
      () = tokio::time::sleep(wait) => {}
      // A deployment's triggers are read at once.
      _ = epochs.changed() => {}
    }
  }
}

impl Scheduler {
  /// Starts every firing due by `now`; returns when the next one is due.
  async fn pass(&mut self, now: u64) -> Result<Option<u64>, StoreError> {
    let epoch = self.app.epoch();
    // Read before the triggers: a trigger new in this epoch fires from
    // when the epoch became known, even if this pass comes later.
    let learned = self.app.epoch_learned_ms();
    if self.epoch != Some(epoch) {
      self.load_triggers().await?;
      self.epoch = Some(epoch);
    }
    let mut next_due: Option<u64> = None;
    for trigger in self.triggers.clone() {
      let key = (trigger.worker.clone(), trigger.cron.pattern().to_owned());
      let up_to = match self.done_up_to.get(&key) {
        Some(&up_to) => up_to,
        None => {
          let last = self
            .app
            .store()
            .last_firing(key.0.clone(), key.1.clone())
            .await?;
          // A trigger never fired starts when its deployment became
          // known; one that has fired catches up.
          last.map_or(learned.min(now), |last| {
            last.max(now.saturating_sub(ms(CATCH_UP)))
          })
        }
      };
      let mut up_to = up_to;
      while let Some(time) = trigger.cron.next_after(up_to).filter(|&t| t <= now) {
        self.start(&trigger, time);
        up_to = time;
      }
      self.done_up_to.insert(key, up_to);
      if let Some(time) = trigger.cron.next_after(up_to) {
        next_due = Some(next_due.map_or(time, |due| due.min(time)));
      }
    }
    self.take_over_lapsed(now).await?;
    if now >= self.next_prune_ms {
      self.next_prune_ms = now + ms(Duration::from_secs(3600));
      let pruned = self
        .app
        .store()
        .prune_firings(now.saturating_sub(ms(KEEP)))
        .await?;
      if pruned > 0 {
        tracing::debug!(pruned, "old cron firings forgotten");
      }
    }
    Ok(next_due)
  }

  /// Reads the triggers of the versions serving each worker: the larger
  /// share's version of a split (the first if even), as its crons are the
  /// worker's.
  async fn load_triggers(&mut self) -> Result<(), StoreError> {
    let state = self.app.store().state().await?;
    let mut triggers = Vec::new();
    for deployment in &state.workers {
      let Some(version) = deployment
        .versions
        .iter()
        .reduce(|best, v| if v.percent > best.percent { v } else { best })
      else {
        continue;
      };
      if !self.crons_of.contains_key(&version.hash) {
        let crons = match self.app.store().bundle(version.hash.clone()).await? {
          Some(bytes) => Bundle::from_stored(&bytes, &version.hash)
            .map(|bundle| bundle.crons)
            .unwrap_or_default(),
          None => Vec::new(),
        };
        self.crons_of.insert(version.hash.clone(), crons);
      }
      for pattern in self.crons_of.get(&version.hash).into_iter().flatten() {
        match CronTrigger::parse(pattern) {
          Ok(cron) => triggers.push(Trigger {
            worker: deployment.worker.clone(),
            version: version.number,
            cron,
          }),
          Err(err) => tracing::warn!(worker = %deployment.worker, "cron trigger skipped: {err}"),
        }
      }
    }
    let live: HashSet<(String, String)> = triggers
      .iter()
      .map(|t| (t.worker.clone(), t.cron.pattern().to_owned()))
      .collect();
    self.done_up_to.retain(|key, _| live.contains(key));
    self.triggers = triggers;
    Ok(())
  }

  /// Starts the firings another replica claimed and left to lapse, where
  /// their trigger still serves.
  async fn take_over_lapsed(&mut self, now: u64) -> Result<(), StoreError> {
    let since = now.saturating_sub(ms(CATCH_UP));
    for key in self.app.store().lapsed_firings(since, now).await? {
      let trigger = self
        .triggers
        .iter()
        .find(|t| t.worker == key.worker && t.cron.pattern() == key.cron)
        .cloned();
      if let Some(trigger) = trigger {
        self.start(&trigger, key.scheduled_ms);
      }
    }
    Ok(())
  }

  /// Claims and runs one firing on a task of its own, unless this replica
  /// runs it already.
  fn start(&self, trigger: &Trigger, scheduled_ms: u64) {
    let firing = Firing {
      worker: trigger.worker.clone(),
      version: trigger.version,
      cron: trigger.cron.pattern().to_owned(),
      scheduled_ms,
    };
    let key = key_of(&firing);
    let fresh = self
      .running
      .lock()
      .is_ok_and(|mut running| running.insert(key.clone()));
    if !fresh {
      return;
    }
    let app = self.app.clone();
    let clock = self.clock.clone();
    let replica = self.replica.clone();
    let running = self.running.clone();
    tokio::spawn(async move {
      if let Err(err) = claim_and_run(&app, &clock, &replica, firing).await {
        tracing::warn!(worker = %key.worker, cron = %key.cron, "cron firing: {err}");
      }
      if let Ok(mut running) = running.lock() {
        running.remove(&key);
      }
    });
  }
}

fn key_of(firing: &Firing) -> FiringKey {
  FiringKey {
    worker: firing.worker.clone(),
    cron: firing.cron.clone(),
    scheduled_ms: firing.scheduled_ms,
  }
}

/// Claims `firing` and hands it to connected nodes in turn until one
/// answers; releases the claim if none does.
async fn claim_and_run(
  app: &Arc<ControlPlane>,
  clock: &CronClock,
  replica: &str,
  firing: Firing,
) -> Result<(), StoreError> {
  let store = app.store();
  let key = key_of(&firing);
  let now = clock.now_ms();
  let claimed = store
    .claim_firing(key.clone(), replica.to_owned(), now, now + ms(LEASE))
    .await?;
  if !claimed {
    return Ok(());
  }
  let mut tried = HashSet::new();
  // Spread firings over the nodes, the same way on every replica.
  let spread = usize::try_from(firing.scheduled_ms / 1000).unwrap_or(0);
  loop {
    let nodes: Vec<String> = app
      .firings()
      .nodes()
      .into_iter()
      .filter(|node| !tried.contains(node))
      .collect();
    if nodes.is_empty() {
      tracing::info!(worker = %key.worker, cron = %key.cron, "no edge node to run a cron firing on; released");
      return store.release_firing(key, replica.to_owned()).await;
    }
    let node = nodes[spread % nodes.len()].clone();
    tried.insert(node.clone());
    let handed = app.firings().hand(&node, firing.clone());
    tokio::pin!(handed);
    let deadline = tokio::time::sleep(ANSWER_TIMEOUT);
    tokio::pin!(deadline);
    let mut renew = tokio::time::interval(LEASE / 3);
    renew.tick().await;
    let answer = loop {
      tokio::select! {
        answer = &mut handed => break answer.ok(),
        () = &mut deadline => break None,
        _ = renew.tick() => {
          let until = clock.now_ms() + ms(LEASE);
          if !store.renew_firing(key.clone(), replica.to_owned(), until).await? {
            tracing::warn!(worker = %key.worker, cron = %key.cron, "cron firing's claim lapsed while it ran");
            return Ok(());
          }
        }
      }
    };
    match answer {
      Some(result) => {
        record(app, &node, result).await?;
        return Ok(());
      }
      None => {
        tracing::info!(worker = %key.worker, cron = %key.cron, %node, "edge node did not answer a cron firing; trying another")
      }
    }
  }
}

/// Records what `node` reported for a firing: in the store, and (if the
/// store did not have it yet) in the counts and tails.
pub async fn record(
  app: &ControlPlane,
  node: &str,
  result: FiringResult,
) -> Result<(), StoreError> {
  let firing = &result.firing;
  let first = app
    .store()
    .finish_firing(
      key_of(firing),
      node.to_owned(),
      result.ok,
      result.duration_ms,
    )
    .await?;
  if !first {
    return Ok(());
  }
  let counts = &app.firings().counts;
  let outcome = if result.ok {
    counts.ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    "ok"
  } else {
    counts
      .failed
      .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    "exception"
  };
  counts
    .duration_ms
    .fetch_add(result.duration_ms, std::sync::atomic::Ordering::Relaxed);
  counts
    .delay_ms
    .fetch_add(result.delay_ms, std::sync::atomic::Ordering::Relaxed);
  tracing::info!(worker = %firing.worker, cron = %firing.cron, scheduled_ms = firing.scheduled_ms, %node, outcome, duration_ms = result.duration_ms, "cron firing ran");
  app.tail_event(TailEvent {
    time_ms: CronClock::System.now_ms(),
    worker: firing.worker.clone(),
    version: Some(firing.version),
    edge: node.to_owned(),
    ray: None,
    kind: TailKind::Scheduled {
      cron: firing.cron.clone(),
      scheduled_ms: firing.scheduled_ms,
      outcome: outcome.to_owned(),
      wall_ms: result.duration_ms,
      delay_ms: result.delay_ms,
    },
  });
  Ok(())
}
