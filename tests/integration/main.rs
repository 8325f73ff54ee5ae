//! Outpost's integration tests: real servers on loopback port 0, driven by a
//! real HTTP client (reqwest over hyper).

mod bundle;
mod cli;
mod concurrency;
mod errors;
mod fixtures;
mod isolates;
mod limits;
mod reload;
mod shutdown;
mod streaming;
mod util;
