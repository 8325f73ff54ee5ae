//! One module per subcommand, and what the serving ones share.

pub mod control;
pub mod dev;
pub mod edge;
mod node;
