//! Starting a worker: a fresh isolate from the snapshot, the bundle's modules
//! evaluated in it, and its request loop started.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use deno_core::error::CoreError;
use deno_core::{PollEventLoopOptions, RuntimeOptions, v8};
use tokio::sync::mpsc;

use crate::bundle::{BundleError, BundleLoader, WorkerBundle};
use crate::ext::serve::{RequestQueue, ServeRequest};
use crate::isolate::IsolateCell;

static SNAPSHOT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/OUTPOST_SNAPSHOT.bin"));

/// The name of the global the snapshot leaves for the host; see
/// `js-api/src/worker/99_main.js`.
const BOOTSTRAP_GLOBAL: &str = "__outpostBootstrap";

/// The bindings a worker receives as `env`. Only plain vars so far.
#[derive(Debug, Clone, Default)]
pub struct WorkerEnv {
  /// Plain string vars, visible as `env.NAME`.
  pub vars: BTreeMap<String, String>,
}

/// One deployable version of a worker: its code and its bindings.
#[derive(Debug, Clone)]
pub struct WorkerVersion {
  /// The worker's modules.
  pub bundle: Arc<WorkerBundle>,
  /// Its bindings.
  pub env: Arc<WorkerEnv>,
}

/// Why a worker could not be started.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
  /// The bundle could not be built.
  #[error(transparent)]
  Bundle(#[from] BundleError),
  /// V8 refused the code, or the top-level code threw. The message carries
  /// the JS error and its stack (file:line:col).
  #[error("{0}")]
  Script(String),
  /// The snapshot does not hold the bootstrap entry point.
  #[error("the startup snapshot is missing {BOOTSTRAP_GLOBAL}")]
  Snapshot,
  /// The executor that should run the worker has stopped.
  #[error("the executor thread has stopped")]
  ExecutorGone,
}

impl From<CoreError> for WorkerError {
  fn from(err: CoreError) -> Self {
    // CoreError's own Display is empty; its kind carries the JS message
    // and stack.
    WorkerError::Script(err.0.to_string())
  }
}

/// Flags Outpost gives V8 before any of its own. Executors are one thread
/// per core, so V8's parallel GC helper threads would only steal time from
/// other executors and add context switches; measured with compare.py, GC
/// on the isolate's own thread costs less CPU per request.
pub const DEFAULT_V8_FLAGS: [&str; 1] = ["--single-threaded-gc"];

/// Passes [`DEFAULT_V8_FLAGS`] and then `flags` to V8 (a later flag wins).
/// Call before the first isolate is created; returns the flags V8 did not
/// recognise.
pub fn set_v8_flags(flags: &[String]) -> Vec<String> {
  // V8 treats the first argument as the program name.
  let mut args = vec!["outpost".to_owned()];
  args.extend(DEFAULT_V8_FLAGS.iter().map(|f| (*f).to_owned()));
  args.extend(flags.iter().cloned());
  deno_core::v8_set_flags(args).into_iter().skip(1).collect()
}

/// Runtime options for an isolate started from the snapshot.
fn options(module_loader: Option<Rc<dyn deno_core::ModuleLoader>>) -> RuntimeOptions {
  RuntimeOptions {
    startup_snapshot: Some(SNAPSHOT),
    extensions: crate::extensions::all(),
    module_loader,
    ..Default::default()
  }
}

/// A blank isolate from the startup snapshot, with the Web API globals in
/// place and no worker code loaded.
pub fn blank_isolate() -> Result<IsolateCell, WorkerError> {
  Ok(IsolateCell::new(options(None))?)
}

/// Globals that hold deno_core's internals (ops included). They are needed
/// while an isolate starts and must be gone before worker code runs.
const HOST_GLOBALS: [&str; 2] = ["Deno", "__bootstrap"];

/// Takes the bootstrap function out of the global scope and removes the host
/// internals, so worker code can never reach either.
fn take_bootstrap(cell: &mut IsolateCell) -> Result<v8::Global<v8::Function>, WorkerError> {
  cell.with(|runtime| {
    deno_core::scope!(scope, runtime);
    let global = scope.get_current_context().global(scope);
    let key = v8::String::new(scope, BOOTSTRAP_GLOBAL).ok_or(WorkerError::Snapshot)?;
    let value = global.get(scope, key.into()).ok_or(WorkerError::Snapshot)?;
    let function = v8::Local::<v8::Function>::try_from(value).map_err(|_| WorkerError::Snapshot)?;
    for name in std::iter::once(BOOTSTRAP_GLOBAL).chain(HOST_GLOBALS) {
      let key = v8::String::new(scope, name).ok_or(WorkerError::Snapshot)?;
      global.delete(scope, key.into());
    }
    Ok(v8::Global::new(scope, function))
  })
}

/// Starts `version` in a new isolate whose requests arrive on `requests`.
/// Returns once the modules have been evaluated and the request loop runs.
pub(crate) async fn start_worker(
  version: &WorkerVersion,
  requests: mpsc::UnboundedReceiver<ServeRequest>,
) -> Result<IsolateCell, WorkerError> {
  let loader = Rc::new(BundleLoader::new(version.bundle.clone()));
  let mut cell = IsolateCell::new(options(Some(loader)))?;
  let bootstrap = take_bootstrap(&mut cell)?;
  cell.with(|runtime| {
    runtime
      .op_state()
      .borrow_mut()
      .put(RequestQueue::new(requests))
  });

  let main = version.bundle.main().clone();
  let module_id = cell
    .run(|runtime| runtime.load_main_es_module(&main))
    .await?;
  cell
    .run(|runtime| async move {
      let evaluation = runtime.mod_evaluate(module_id);
      runtime
        .with_event_loop_future(evaluation, PollEventLoopOptions::default())
        .await
    })
    .await?;

  let env_json =
    serde_json::to_string(&version.env.vars).map_err(|e| WorkerError::Script(e.to_string()))?;
  let args = cell.with(|runtime| -> Result<_, WorkerError> {
    let namespace = runtime.get_module_namespace(module_id)?;
    deno_core::scope!(scope, runtime);
    let namespace: v8::Local<v8::Value> = v8::Local::new(scope, namespace).into();
    let env = v8::String::new(scope, &env_json).ok_or_else(|| {
      WorkerError::Script("the worker's vars are too large for a V8 string".into())
    })?;
    Ok([
      v8::Global::new(scope, namespace),
      v8::Global::new(scope, v8::Local::<v8::Value>::from(env)),
    ])
  })?;
  cell
    .run(|runtime| runtime.call_with_args(&bootstrap, &args))
    .await
    .map_err(|e| WorkerError::Script(e.to_string()))?;
  Ok(cell)
}
