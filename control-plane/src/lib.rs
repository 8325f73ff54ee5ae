//! Outpost's control plane: stores uploaded workers as immutable versions,
//! deploys them, and distributes them to edge nodes.
//!
//! # Layout
//! - [`app`]: [`ControlPlane`], the store and the change feed every part
//!   shares; the first start's admin token.
//! - [`api`]: the HTTP API under `/v1`, with its scopes and JSON errors.
//! - [`certs`]: the certificate authority behind the sync connection's
//!   mutual TLS.
//! - [`firings`]: hands cron firings to connected edges and routes their
//!   answers back.
//! - [`kv`]: the store as a KV backend (for `outpost dev` and edges'
//!   KV streams), and the invalidations sent to edges.
//! - [`metrics`]: `GET /metrics` (epoch, connected edges, each edge's
//!   lag) on the admin listener.
//! - [`secrets`]: sealing private keys at rest (AES-256-GCM, the key
//!   outside the database).
//! - [`scheduler`]: cron triggers of deployed workers, each firing claimed
//!   once across replicas and run on one edge.
//! - [`server`]: the API's HTTP server, `run(listener, app, shutdown)`.
//! - [`sync_server`]: the QUIC endpoint edges hold their one connection to.
//! - [`store`]: the storage trait, on SQLite or PostgreSQL; every change
//!   edges see bumps the epoch. KV namespaces and entries, and dispatch
//!   namespaces, live there too.
//! - [`tokens`]: API tokens, stored hashed.

pub mod api;
pub mod app;
pub mod certs;
pub mod firings;
pub mod kv;
pub mod metrics;
pub mod scheduler;
pub mod secrets;
pub mod server;
pub mod store;
pub mod sync_server;
pub mod tokens;

pub use app::ControlPlane;

/// Why the control plane could not start or carry out a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
  /// The store failed.
  #[error(transparent)]
  Store(#[from] store::StoreError),
  /// No randomness for a token.
  #[error(transparent)]
  Random(#[from] tokens::RandomError),
  /// The certificate authority or the TLS set-up failed.
  #[error(transparent)]
  Cert(#[from] certs::CertError),
  /// The sync endpoint could not be opened.
  #[error("sync endpoint: {0}")]
  Sync(#[from] std::io::Error),
}
