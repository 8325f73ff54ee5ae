//! One module per subcommand, and what the serving ones share.

mod api;
pub mod certs;
pub mod control;
pub mod deploy;
mod deploy_assets;
pub mod dev;
mod dev_workers;
pub mod dispatch;
pub mod edge;
pub mod init;
pub mod kv;
mod node;
pub mod secret;
pub mod tail;
pub mod triggers;
pub mod versions;
