//! `op_worker_*`: host services for the worker's global scope.

use deno_core::{OpState, op2};

use super::LogLevel;

/// Receives one `console.*` line (or an uncaught exception's report),
/// written while request `rid` was handled (-1: outside any). Output goes
/// to `tracing` under the target `outpost::console`, inside the span of the
/// worker that wrote it, and to the node's log sink if it wants the worker.
#[op2(fast)]
pub fn op_worker_log(
  state: &mut OpState,
  #[smi] level: i32,
  #[string] message: &str,
  #[smi] rid: i32,
) {
  let message = message.strip_suffix('\n').unwrap_or(message);
  // Libraries colour their output for terminals (Hono's logger, say); log
  // lines and tails get plain text.
  let message = strip_ansi(message);
  let message = message.as_ref();
  let level = match level {
    0 => LogLevel::Debug,
    1 => LogLevel::Info,
    2 => LogLevel::Warn,
    _ => LogLevel::Error,
  };
  match level {
    LogLevel::Debug => tracing::debug!(target: "outpost::console", "{message}"),
    LogLevel::Info => tracing::info!(target: "outpost::console", "{message}"),
    LogLevel::Warn => tracing::warn!(target: "outpost::console", "{message}"),
    LogLevel::Error => tracing::error!(target: "outpost::console", "{message}"),
  }
  super::to_sink(state, level, message, u32::try_from(rid).ok());
}

/// `text` without ANSI escape sequences (CSI: `ESC [ ... final`, and
/// two-character escapes).
pub(crate) fn strip_ansi(text: &str) -> std::borrow::Cow<'_, str> {
  if !text.contains('\u{1b}') {
    return std::borrow::Cow::Borrowed(text);
  }
  let mut out = String::with_capacity(text.len());
  let mut chars = text.chars();
  while let Some(c) = chars.next() {
    if c != '\u{1b}' {
      out.push(c);
      continue;
    }
    // CSI: parameters and intermediates, up to the final byte (@ to ~);
    // any other escape drops its one following character.
    if chars.next() == Some('[') {
      for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
          break;
        }
      }
    }
  }
  std::borrow::Cow::Owned(out)
}
