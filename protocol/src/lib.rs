//! What Outpost's control plane and edge nodes exchange, so that neither
//! crate depends on the other.
//!
//! # Layout
//! - [`assets`]: static assets: the manifest a version carries, its
//!   limits, and which answer (file, redirect, worker, 404) a request gets.
//! - [`bundle`]: a worker version as uploaded and distributed: its modules,
//!   main module, vars and limits; validation and the content hash.
//! - [`cron`]: Workers' cron patterns and their next firings.
//! - [`kv`]: the Workers KV data model: limits, checks, entries, list
//!   pages, and [`KvBackend`], what a worker's KV binding talks to.
//! - [`route`]: route patterns (`api.example.com/*`, `*.example.com/v1/*`),
//!   matching and specificity.
//! - [`tls`]: the host names a TLS certificate serves.
//! - [`tail`]: live log events, edge to control plane to `outpost tail`.
//! - [`sync`]: the messages of the control plane's sync connection and
//!   their framing.

pub mod assets;
pub mod bundle;
pub mod cron;
pub mod kv;
pub mod route;
pub mod sync;
pub mod tail;
pub mod tls;

pub use bundle::{
  Bundle, BundleError, DispatchNamespaceBinding, KvBinding, Limits, ServiceBinding, is_worker_name,
  namespaced_worker,
};
pub use kv::{KvBackend, KvError};
pub use route::{RouteError, RoutePattern};
