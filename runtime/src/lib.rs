//! Outpost's isolate engine: runs Workers-style JavaScript and TypeScript on
//! V8 isolates built from a startup snapshot.
//!
//! It knows nothing of HTTP servers or the control plane. Callers hand it
//! [`WorkerRequest`]s through an [`ExecutorHandle`] and get
//! [`WorkerResponse`]s back.
//!
//! # Layout
//! - `array_buffers`: a per-isolate ArrayBuffer allocator within the memory
//!   limit.
//! - [`bundle`]: a worker's modules, read, checked and transpiled once.
//! - `code_cache`: V8 code caches kept on disk beside a bundle.
//! - [`worker`]: starting a worker in an isolate from the snapshot.
//! - [`executor`]: executor threads, each an actor owning many isolates.
//! - [`isolate`]: [`IsolateCell`], the enter/exit discipline that lets many
//!   isolates share one thread.
//! - [`limits`]: per-worker limits, and the CPU watchdog.
//! - `pool`: each executor's pool of pre-warmed blank isolates.
//! - [`residency`]: which idle isolates an executor evicts.
//! - `extensions`: the one ordered list of deno_core extensions, shared with
//!   `build.rs`.
//! - `ext/<area>/`: Outpost's own extensions (`cache`, `fetch`, `html`, `kv`,
//!   `serve`, `websocket`, `worker`); their JS lives in `js-api/src/<area>/`.

mod array_buffers;
pub mod bundle;
mod code_cache;
pub mod executor;
mod ext;
mod extensions;
pub mod isolate;
pub mod limits;
mod pool;
pub mod residency;
pub mod resolve;
pub mod worker;

pub use bundle::{BundleError, WorkerBundle};
pub use executor::{
  DispatchError, ExecutorHandle, ExecutorOptions, ExecutorStats, spawn_executor,
  spawn_executor_with,
};
pub use ext::assets::{AssetFetcher, AssetReply};
pub use ext::cache::ResponseCache;
pub use ext::fetch::{OutboundPolicy, PolicyError};
pub use ext::kv::KvNamespace;
pub use ext::serve::{
  BodyError, CallLimits, CpuLedger, RequestBody, RequestCf, ResponseBody, ScheduledEvent,
  WorkerRequest, WorkerResponse,
};
pub use ext::service::{
  DEPTH_HEADER as SERVICE_DEPTH_HEADER, ServiceBindings, ServiceFailure, ServiceFetcher,
  ServiceTarget,
};
pub use ext::websocket::{WebSocketLink, WsMessage, pump as pump_websocket};
pub use ext::worker::{LogLevel, LogSink, WorkerLogLine, WorkerRequestLine};
pub use isolate::IsolateCell;
pub use limits::{CPU_BUCKETS, CpuHistogram, Termination, WorkerLimits};
pub use residency::ResidencyPolicy;
pub use worker::{WorkerEnv, WorkerError, WorkerVersion, blank_isolate, set_v8_flags};
