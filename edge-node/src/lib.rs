//! An Outpost edge node: accepts HTTP, routes each request to a worker, and
//! dispatches it to the executor thread that owns that worker's isolate.
//!
//! # Layout
//! - [`server`]: the hyper server (HTTP/1.1 and h2c), `run(listener, …,
//!   shutdown)`, limits and graceful shutdown.
//! - `convert`: hyper requests to [`outpost_runtime::WorkerRequest`] and
//!   worker responses back, streaming both ways.
//! - [`dispatch`]: routing to a worker and the choice of executor thread.
//! - [`local`]: workers served from local files, reloaded when they change
//!   (`outpost dev`).

mod convert;
pub mod dispatch;
pub mod local;
pub mod server;

pub use dispatch::{Dispatcher, Routes};
pub use server::{ServerConfig, run};
