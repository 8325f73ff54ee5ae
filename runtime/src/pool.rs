//! Each executor thread's pool of pre-warmed blank isolates: created from
//! the snapshot ahead of need, so binding a worker to one skips isolate
//! creation, the largest part of a cold start. Refilled off the request
//! path, after the current work on the thread.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use deno_core::v8;

use crate::bundle::BundleLoader;
use crate::isolate::IsolateCell;
use crate::limits::WorkerLimits;
use crate::worker::{WorkerError, snapshot_options, take_bootstrap};

/// Blank isolates each executor keeps ready by default.
pub const DEFAULT_POOL_SIZE: usize = 4;

/// Pause before each refill. Building an isolate takes a couple of
/// milliseconds on the executor thread; right after a take, that would land
/// in the middle of the very start the pool just served.
const REFILL_DELAY: Duration = Duration::from_millis(10);

/// An isolate from the snapshot, not yet bound to any worker.
pub(crate) struct BlankIsolate {
  pub(crate) cell: IsolateCell,
  pub(crate) loader: Rc<BundleLoader>,
  pub(crate) bootstrap: v8::Global<v8::Function>,
}

impl BlankIsolate {
  /// Creates one with a V8 heap limit of `heap_bytes`.
  pub(crate) fn new(heap_bytes: usize) -> Result<Self, WorkerError> {
    let loader = Rc::new(BundleLoader::default());
    let mut cell = IsolateCell::new(snapshot_options(Some(loader.clone()), Some(heap_bytes)))?;
    let bootstrap = take_bootstrap(&mut cell)?;
    Ok(Self {
      cell,
      loader,
      bootstrap,
    })
  }
}

/// One executor thread's pool.
pub(crate) struct IsolatePool {
  idle: RefCell<Vec<BlankIsolate>>,
  target: usize,
  refilling: Cell<bool>,
  /// Workers started from a pooled isolate.
  pub(crate) warm_starts: Cell<u64>,
  /// Workers started in a new isolate.
  pub(crate) cold_starts: Cell<u64>,
}

impl IsolatePool {
  /// A pool that keeps `target` isolates ready; filling starts at once.
  pub(crate) fn start(target: usize) -> Rc<Self> {
    let pool = Rc::new(Self {
      idle: RefCell::new(Vec::new()),
      target,
      refilling: Cell::new(false),
      warm_starts: Cell::new(0),
      cold_starts: Cell::new(0),
    });
    pool.refill();
    pool
  }

  /// A blank isolate for a worker with `limits`: from the pool when the
  /// pooled ones fit (they have the default heap limit), else a new one.
  pub(crate) fn take(self: &Rc<Self>, limits: &WorkerLimits) -> Result<BlankIsolate, WorkerError> {
    if limits.heap_bytes == WorkerLimits::default().heap_bytes
      && let Some(blank) = self.idle.borrow_mut().pop()
    {
      self.refill();
      self.warm_starts.set(self.warm_starts.get() + 1);
      return Ok(blank);
    }
    self.cold_starts.set(self.cold_starts.get() + 1);
    BlankIsolate::new(limits.heap_bytes)
  }

  /// Ready isolates right now.
  pub(crate) fn len(&self) -> usize {
    self.idle.borrow().len()
  }

  /// Tops the pool up in a task of its own, one isolate at a time, each
  /// after [`REFILL_DELAY`].
  fn refill(self: &Rc<Self>) {
    if self.refilling.replace(true) {
      return;
    }
    let pool = self.clone();
    tokio::task::spawn_local(async move {
      while pool.len() < pool.target {
        tokio::time::sleep(REFILL_DELAY).await;
        match BlankIsolate::new(WorkerLimits::default().heap_bytes) {
          Ok(blank) => pool.idle.borrow_mut().push(blank),
          Err(err) => {
            tracing::error!("cannot pre-warm an isolate: {err}");
            break;
          }
        }
      }
      pool.refilling.set(false);
    });
  }
}
