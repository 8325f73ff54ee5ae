//! `op_worker_*`: host services for the worker's global scope.

use deno_core::op2;

/// Receives one `console.*` line. Output goes to `tracing` under the target
/// `outpost::console`, inside the span of the worker that wrote it.
#[op2(fast)]
pub fn op_worker_log(#[smi] level: i32, #[string] message: &str) {
  let message = message.strip_suffix('\n').unwrap_or(message);
  match level {
    0 => tracing::debug!(target: "outpost::console", "{message}"),
    1 => tracing::info!(target: "outpost::console", "{message}"),
    2 => tracing::warn!(target: "outpost::console", "{message}"),
    _ => tracing::error!(target: "outpost::console", "{message}"),
  }
}
