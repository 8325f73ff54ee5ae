//! Outpost's integration tests: real servers on loopback port 0, driven by a
//! real HTTP client (reqwest over hyper).

// First, so its macros are in scope in the modules below.
#[macro_use]
mod util;

mod assets;
mod auth_matrix;
mod bundle;
mod cache_api;
mod chaos;
mod cli;
mod cluster;
mod code_cache;
mod concurrency;
mod conformance;
mod control_api;
mod cpu_clock;
mod cpu_ledger;
mod cron_cluster;
mod disk_cache;
mod dispatch;
mod distribution;
mod edge_folder;
mod errors;
mod eviction;
mod fixtures;
mod fuzz;
mod hostile;
mod http3;
mod isolates;
mod kv;
mod kv_api;
mod kv_cli;
mod kv_edges;
mod limits;
mod metrics;
mod node_samples;
mod npm_projects;
mod observability;
mod origin;
mod outbound;
mod protocol;
mod reload;
mod routes;
mod scale;
mod scheduled;
mod secrets;
mod services;
mod shutdown;
mod sockets;
mod streaming;
mod tail;
mod tls;
mod transports;
mod websocket;
mod worker_limits;
mod workers_compat;
mod wrangler;
