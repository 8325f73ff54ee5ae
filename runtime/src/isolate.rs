//! [`IsolateCell`]: the one type that lets many `JsRuntime`s live on one
//! thread.
//!
//! rusty_v8 enters an isolate when it is created and exits it when it is
//! dropped, and expects isolates to nest like a stack. With many runtimes per
//! thread, used in any order and dropped in any order, that breaks: a script
//! run in an older runtime while a newer one is entered panics ("HandleScope
//! and Context do not belong to the same Isolate"), and an out-of-order drop
//! panics ("OwnedIsolate instances must be dropped in the reverse order of
//! creation"). The discipline here keeps every isolate exited while idle:
//!
//! 1. exit right after the runtime is created;
//! 2. enter around every use, polling included (and exit again after);
//! 3. enter once more just before the runtime is dropped.
//!
//! No other code calls `enter` or `exit`.

use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};

use deno_core::error::CoreError;
use deno_core::v8::{self, UnsafeRawIsolatePtr};
use deno_core::{JsRuntime, PollEventLoopOptions, RuntimeOptions};

/// A `JsRuntime` whose isolate is entered only while it is being used.
pub struct IsolateCell {
  runtime: ManuallyDrop<JsRuntime>,
  isolate: UnsafeRawIsolatePtr,
}

/// Enters an isolate for as long as it lives, exiting on drop (and so also
/// when the code inside panics).
struct Entered(UnsafeRawIsolatePtr);

impl Entered {
  fn new(isolate: UnsafeRawIsolatePtr) -> Self {
    // SAFETY: the pointer comes from a live OwnedIsolate held by the same
    // IsolateCell, which outlives this guard; isolates are used only on the
    // thread that created them (IsolateCell is !Send).
    unsafe { v8::Isolate::from_raw_isolate_ptr(isolate).enter() };
    Self(isolate)
  }
}

impl Drop for Entered {
  fn drop(&mut self) {
    // SAFETY: as in `Entered::new`; this pairs with that `enter`.
    unsafe { v8::Isolate::from_raw_isolate_ptr(self.0).exit() };
  }
}

impl IsolateCell {
  /// Creates a runtime and leaves its isolate exited.
  pub fn new(options: RuntimeOptions) -> Result<Self, CoreError> {
    crate::worker::apply_default_v8_flags();
    let mut runtime = JsRuntime::try_new(options)?;
    // SAFETY: the isolate is live; we only copy its address.
    let isolate = unsafe { runtime.v8_isolate().as_raw_isolate_ptr() };
    // SAFETY: JsRuntime creation entered the isolate; this is the matching
    // exit, done before anything else can be entered on this thread.
    unsafe { v8::Isolate::from_raw_isolate_ptr(isolate).exit() };
    Ok(Self {
      runtime: ManuallyDrop::new(runtime),
      isolate,
    })
  }

  /// Runs `f` with the isolate entered.
  pub fn with<R>(&mut self, f: impl FnOnce(&mut JsRuntime) -> R) -> R {
    let _entered = Entered::new(self.isolate);
    f(&mut self.runtime)
  }

  /// Builds a future from the runtime and drives it with the isolate entered
  /// at every poll, and while the future is being built. The future
  /// borrows the cell, so the cell cannot be dropped while it lives, even
  /// when the future itself holds no reference into the runtime:
  ///
  /// ```compile_fail,E0505
  /// fn drop_while_running(mut cell: outpost_runtime::IsolateCell) {
  ///   let future = cell.run(|_| async {});
  ///   drop(cell);
  ///   drop(future);
  /// }
  /// ```
  pub fn run<'a, F>(
    &'a mut self,
    build: impl FnOnce(&'a mut JsRuntime) -> F,
  ) -> EnteredFuture<'a, F>
  where
    F: Future + 'a,
  {
    let isolate = self.isolate;
    let future = {
      let _entered = Entered::new(isolate);
      build(&mut self.runtime)
    };
    EnteredFuture {
      isolate,
      future: Box::pin(future),
      _cell: PhantomData,
    }
  }

  /// Polls the event loop once with the isolate entered.
  pub fn poll_event_loop(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CoreError>> {
    let _entered = Entered::new(self.isolate);
    self
      .runtime
      .poll_event_loop(cx, PollEventLoopOptions::default())
  }
}

impl Drop for IsolateCell {
  fn drop(&mut self) {
    // OwnedIsolate's drop exits the isolate and insists it is the current
    // one, so it must be entered first. Its exit pairs with this enter.
    // SAFETY: the isolate is still alive; it is dropped just below.
    unsafe { v8::Isolate::from_raw_isolate_ptr(self.isolate).enter() };
    // SAFETY: `runtime` is not used again after this.
    unsafe { ManuallyDrop::drop(&mut self.runtime) };
  }
}

/// A future polled with its isolate entered; see [`IsolateCell::run`]. It
/// borrows its cell for as long as it lives, so the isolate it enters is
/// alive at every poll.
pub struct EnteredFuture<'a, F> {
  isolate: UnsafeRawIsolatePtr,
  future: Pin<Box<F>>,
  _cell: PhantomData<&'a mut IsolateCell>,
}

impl<F: Future> Future for EnteredFuture<'_, F> {
  type Output = F::Output;

  fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
    let _entered = Entered::new(self.isolate);
    self.future.as_mut().poll(cx)
  }
}
