//! Outpost's own deno_core extensions, one folder per area.
//!
//! This module is compiled twice: into the runtime library, and into
//! `build.rs`, which needs the same ops to build the startup snapshot. It
//! therefore refers only to its own children and to external crates.

pub mod assets;
pub mod cache;
pub mod fetch;
pub mod html;
pub mod kv;
pub mod node;
pub mod serve;
pub mod service;
pub mod sockets;
pub mod websocket;
pub mod worker;
