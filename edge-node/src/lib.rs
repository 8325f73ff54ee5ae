//! An Outpost edge node: accepts HTTP, routes each request to a worker, and
//! dispatches it to the executor thread that owns that worker's isolate.
//!
//! # Layout
//! - [`admission`]: connection caps (total, per client) and the idle
//!   watchdog that closes connections which send no request.
//! - [`assets`]: static assets served without an isolate (ETag, ranges,
//!   compression), from a project folder or the node's disk cache.
//! - [`server`]: the hyper server (HTTP/1.1 and h2, cleartext or TLS),
//!   `run(listener, …, shutdown)` and `run_tls`, limits and graceful
//!   shutdown.
//! - [`h3`]: HTTP/3 over QUIC (quinn + h3) on the HTTPS port's number,
//!   bodies streamed both ways, GOAWAY on shutdown.
//! - [`tail`]: live logs of tailed workers, forwarded to the control
//!   plane (`outpost tail`).
//! - [`tls`]: certificates by SNI from PEM files, reloadable; the
//!   handshake's pre-warm hook.
//! - [`config`]: a project's config: outpost.toml and wrangler's files,
//!   environments, `.dev.vars`.
//! - `bundle_store`: bundles and assets on disk, checked when read back,
//!   discarded when damaged, removed once nothing deployed needs them.
//! - [`control`]: a node fed by the control plane: the QUIC sync
//!   connection, bundles and state kept on disk.
//! - `identity`: enrolment and the node's certificate (`node.json`).
//! - `pipeline`: the one request pipeline (authority, limits, route,
//!   assets, worker) that HTTP/1.1, HTTP/2 and HTTP/3 adapt to.
//! - `convert`: hyper bodies for the pipeline and worker responses back
//!   to hyper; `request.cf` and `cf-ray`.
//! - [`firings`]: cron firings the control plane hands the node, run once
//!   each, results sent back.
//! - [`kv`]: the node's KV cache (moka) in front of the control plane.
//! - [`routes`]: the live routing table, from host and path to a worker.
//! - [`services`]: service bindings, run on the bound worker's executor.
//! - [`dispatch`]: the executor threads, and which one runs a worker or
//!   serves a connection.
//! - [`local`]: workers served from local files, reloaded when they change
//!   (`outpost dev`).
//! - [`local_folder`]: a folder of workers, one per subfolder, followed as
//!   folders are added, edited and removed (`outpost edge --local`).
//! - [`metrics`]: the admin endpoint, `GET /metrics` for Prometheus.
//! - [`traffic`]: request, latency, KV cache and sync counters the servers
//!   keep for it.
//! - `websocket`: WebSocket upgrades pumped into a worker's WebSocketPair.

pub mod admission;
pub mod assets;
mod bundle_store;
pub mod config;
pub mod control;
mod convert;
pub mod dispatch;
pub mod firings;
pub mod h3;
mod identity;
pub mod kv;
pub mod local;
pub mod local_folder;
pub mod metrics;
mod pipeline;
pub mod routes;
pub mod scheduled;
pub mod server;
pub mod services;
pub mod tail;
pub mod tls;
pub mod traffic;
mod websocket;

pub use dispatch::Dispatcher;
pub use routes::{RouteTable, Routes};
pub use server::{ServerConfig, run, run_tls};
