//! Executor threads. Each owns a single-threaded tokio runtime and the
//! isolates of the workers pinned to it, and runs as an actor: a message
//! enum, a `select!` loop that never blocks, and a oneshot reply per message.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::runtime::LocalOptions;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::ext::serve::{ServeRequest, WorkerRequest, WorkerResponse};
use crate::isolate::IsolateCell;
use crate::worker::{WorkerError, WorkerVersion, start_worker};

/// How long a replaced isolate may keep running to finish its in-flight
/// requests and `waitUntil` work before it is dropped regardless.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Why a request could not be dispatched to a worker.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
  /// The executor thread has stopped.
  #[error("the executor thread has stopped")]
  ExecutorGone,
  /// The isolate went away before it answered.
  #[error("the worker's isolate stopped before it answered")]
  NoAnswer,
}

/// A job to run on the executor's thread; see [`ExecutorHandle::spawn`].
type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

enum Message {
  Spawn(Job),
  Install {
    worker: String,
    version: WorkerVersion,
    reply: oneshot::Sender<Result<(), WorkerError>>,
  },
  Request {
    worker: String,
    serve: ServeRequest,
  },
  Remove {
    worker: String,
    reply: oneshot::Sender<bool>,
  },
}

/// A started isolate, reported back to the loop to be swapped in.
struct Started {
  worker: String,
  generation: u64,
  live: LiveWorker,
  reply: oneshot::Sender<Result<(), WorkerError>>,
}

/// The executor's hold on a running isolate. Dropping it retires the
/// isolate: no new requests reach it and it drains.
struct LiveWorker {
  /// Installs are numbered, so that of two overlapping installs (quick
  /// successive edits) the later one wins even if it starts first.
  generation: u64,
  version: WorkerVersion,
  requests: mpsc::UnboundedSender<ServeRequest>,
  _retire: oneshot::Sender<()>,
}

/// A cheap, cloneable handle to one executor thread.
#[derive(Clone)]
pub struct ExecutorHandle {
  tx: mpsc::UnboundedSender<Message>,
}

impl ExecutorHandle {
  /// Starts `version` of `worker` on this executor. On success it replaces
  /// the version serving before, which finishes its in-flight requests on
  /// the old code. On failure the old version keeps serving.
  pub async fn install(&self, worker: &str, version: WorkerVersion) -> Result<(), WorkerError> {
    let (reply, answer) = oneshot::channel();
    self
      .tx
      .send(Message::Install {
        worker: worker.to_owned(),
        version,
        reply,
      })
      .map_err(|_| WorkerError::ExecutorGone)?;
    answer.await.map_err(|_| WorkerError::ExecutorGone)?
  }

  /// Stops serving `worker`: its isolate is retired and finishes what is in
  /// flight. Returns whether the worker was installed.
  pub async fn remove(&self, worker: &str) -> Result<bool, DispatchError> {
    let (reply, answer) = oneshot::channel();
    let message = Message::Remove {
      worker: worker.to_owned(),
      reply,
    };
    self
      .tx
      .send(message)
      .map_err(|_| DispatchError::ExecutorGone)?;
    answer.await.map_err(|_| DispatchError::ExecutorGone)
  }

  /// Runs a task on this executor's thread. `make` is called there, so the
  /// future it returns need not be Send. Work that talks to the workers of
  /// this thread (an HTTP connection, say) then does so without waking
  /// another thread.
  pub fn spawn<F, Fut>(&self, make: F) -> Result<(), DispatchError>
  where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
  {
    let job: Job = Box::new(move || Box::pin(make()));
    self
      .tx
      .send(Message::Spawn(job))
      .map_err(|_| DispatchError::ExecutorGone)
  }

  /// Runs one request through `worker` and returns its response head; the
  /// body may still be streaming.
  pub async fn dispatch(
    &self,
    worker: &str,
    request: WorkerRequest,
  ) -> Result<WorkerResponse, DispatchError> {
    let (reply, answer) = oneshot::channel();
    let serve = ServeRequest { request, reply };
    self
      .tx
      .send(Message::Request {
        worker: worker.to_owned(),
        serve,
      })
      .map_err(|_| DispatchError::ExecutorGone)?;
    answer.await.map_err(|_| DispatchError::NoAnswer)
  }
}

/// Starts an executor thread named `name`. It stops when every handle to it
/// has been dropped.
pub fn spawn_executor(name: &str) -> std::io::Result<ExecutorHandle> {
  let (tx, rx) = mpsc::unbounded_channel();
  let (ready_tx, ready_rx) = std::sync::mpsc::channel();
  std::thread::Builder::new()
    .name(name.to_owned())
    .spawn(move || {
      // A LocalRuntime rather than a current-thread runtime plus LocalSet:
      // with a LocalSet, all local tasks count as one task to the scheduler,
      // which then polls the I/O driver too rarely under load (tokio issue
      // #6739). It is !Send, so it is built here, on its own thread.
      let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build_local(LocalOptions::default());
      match runtime {
        Ok(runtime) => {
          let _ = ready_tx.send(Ok(()));
          runtime.block_on(Executor::run(rx));
        }
        Err(err) => {
          let _ = ready_tx.send(Err(err));
        }
      }
    })?;
  ready_rx
    .recv()
    .map_err(|_| std::io::Error::other("the executor thread died while starting"))??;
  Ok(ExecutorHandle { tx })
}

struct Executor {
  workers: HashMap<String, LiveWorker>,
  started: mpsc::UnboundedSender<Started>,
  /// Numbers installs and removals, in the order they arrive.
  installs: u64,
  /// When each removed worker was removed, so that an install already under
  /// way at that moment does not bring it back.
  removed: HashMap<String, u64>,
}

impl Executor {
  async fn run(mut rx: mpsc::UnboundedReceiver<Message>) {
    let (started, mut started_rx) = mpsc::unbounded_channel::<Started>();
    let mut this = Executor {
      workers: HashMap::new(),
      started,
      installs: 0,
      removed: HashMap::new(),
    };
    this.serve(&mut rx, &mut started_rx).await;
  }

  async fn serve(
    &mut self,
    rx: &mut mpsc::UnboundedReceiver<Message>,
    started_rx: &mut mpsc::UnboundedReceiver<Started>,
  ) {
    loop {
      tokio::select! {
        message = rx.recv() => match message {
          Some(Message::Spawn(job)) => {
            tokio::task::spawn_local(job());
          }
          Some(Message::Install { worker, version, reply }) => {
            self.installs += 1;
            spawn_install(worker, self.installs, version, reply, self.started.clone());
          }
          Some(Message::Request { worker, serve }) => self.route(&worker, serve),
          Some(Message::Remove { worker, reply }) => {
            // A later install must not bring it back: count this as one.
            self.installs += 1;
            self.removed.insert(worker.clone(), self.installs);
            let _ = reply.send(self.workers.remove(&worker).is_some());
          }
          None => break,
        },
        Some(started) = started_rx.recv() => {
          let newer_is_live = self
            .workers
            .get(&started.worker)
            .is_some_and(|live| live.generation > started.generation);
          let removed_since = self
            .removed
            .get(&started.worker)
            .is_some_and(|&at| at > started.generation);
          if !newer_is_live && !removed_since {
            self.removed.remove(&started.worker);
            // Replacing the entry drops the old LiveWorker, retiring it.
            self.workers.insert(started.worker, started.live);
          }
          let _ = started.reply.send(Ok(()));
        }
      }
    }
  }

  fn route(&mut self, worker: &str, serve: ServeRequest) {
    let Some(live) = self.workers.get(worker) else {
      let _ = serve.reply.send(WorkerResponse::text(
        http::StatusCode::NOT_FOUND,
        "No worker is deployed under this name.\n",
      ));
      return;
    };
    if let Err(mpsc::error::SendError(serve)) = live.requests.send(serve) {
      // The isolate died (its event loop failed). Start a fresh one from the
      // same version; this request is refused meanwhile.
      tracing::error!(
        worker,
        "the worker's isolate has stopped; starting a fresh one"
      );
      if let Some(dead) = self.workers.remove(worker) {
        let (reply, _) = oneshot::channel();
        spawn_install(
          worker.to_owned(),
          dead.generation,
          dead.version,
          reply,
          self.started.clone(),
        );
      }
      let _ = serve.reply.send(WorkerResponse::text(
        http::StatusCode::SERVICE_UNAVAILABLE,
        "The worker is unavailable.\n",
      ));
    }
  }
}

fn spawn_install(
  worker: String,
  generation: u64,
  version: WorkerVersion,
  reply: oneshot::Sender<Result<(), WorkerError>>,
  started: mpsc::UnboundedSender<Started>,
) {
  let span = tracing::info_span!("worker", name = %worker);
  let task = async move {
    let (requests, requests_rx) = mpsc::unbounded_channel();
    match start_worker(&version, requests_rx).await {
      Ok(cell) => {
        let (retire, retired) = oneshot::channel();
        tokio::task::spawn_local(drive(cell, retired).in_current_span());
        let live = LiveWorker {
          generation,
          version,
          requests,
          _retire: retire,
        };
        let _ = started.send(Started {
          worker,
          generation,
          live,
          reply,
        });
      }
      Err(err) => {
        let _ = reply.send(Err(err));
      }
    }
  };
  tokio::task::spawn_local(task.instrument(span));
}

/// Runs an isolate's event loop until it has nothing left to do after being
/// retired, or until the drain deadline passes.
async fn drive(mut cell: IsolateCell, retired: oneshot::Receiver<()>) {
  let event_loop = poll_fn(|cx| match cell.poll_event_loop(cx) {
    Poll::Ready(Err(err)) => {
      tracing::error!("worker isolate failed: {err}");
      Poll::Ready(())
    }
    Poll::Ready(Ok(())) => Poll::Ready(()),
    Poll::Pending => Poll::Pending,
  });
  let deadline = async {
    let _ = retired.await;
    tokio::time::sleep(DRAIN_DEADLINE).await;
  };
  tokio::select! {
    () = event_loop => tracing::debug!("isolate finished"),
    () = deadline => tracing::warn!("isolate still busy {DRAIN_DEADLINE:?} after it was replaced; dropping it"),
  }
  drop(cell);
}
