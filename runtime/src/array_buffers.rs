//! An ArrayBuffer allocator per isolate that counts the bytes it hands out
//! and refuses to go past a budget.
//!
//! ArrayBuffer contents live outside V8's heap, so the heap limit does not
//! see them: without this a worker could hold gigabytes in typed arrays.
//! Past the budget V8 throws a RangeError ("Array buffer allocation
//! failed") in the worker; the memory is bounded, the node unharmed.

use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use deno_core::v8;

/// The bytes one isolate's ArrayBuffers may hold, and hold now.
#[derive(Debug)]
pub struct ArrayBufferBudget {
  used: AtomicUsize,
  limit: usize,
}

impl ArrayBufferBudget {
  /// Takes `len` bytes from the budget, if they fit.
  fn reserve(&self, len: usize) -> bool {
    self
      .used
      .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
        used.checked_add(len).filter(|total| *total <= self.limit)
      })
      .is_ok()
  }

  fn release(&self, len: usize) {
    self.used.fetch_sub(len, Ordering::AcqRel);
  }
}

/// Allocates zeroed (`zeroed`) or uninitialised memory for an ArrayBuffer
/// within `budget`; null (V8 then throws) past it or when out of memory.
fn allocate_within(budget: &ArrayBufferBudget, len: usize, zeroed: bool) -> *mut c_void {
  if !budget.reserve(len) {
    return std::ptr::null_mut();
  }
  // One byte at least: malloc(0) may return null, which V8 reads as failure.
  let size = len.max(1);
  // SAFETY: plain C allocations of `size` bytes, freed in `free` below.
  let data = unsafe {
    if zeroed {
      libc::calloc(size, 1)
    } else {
      libc::malloc(size)
    }
  };
  if data.is_null() {
    budget.release(len);
  }
  data
}

unsafe extern "C" fn allocate(budget: &ArrayBufferBudget, len: usize) -> *mut c_void {
  allocate_within(budget, len, true)
}

unsafe extern "C" fn allocate_uninitialized(budget: &ArrayBufferBudget, len: usize) -> *mut c_void {
  allocate_within(budget, len, false)
}

unsafe extern "C" fn free(budget: &ArrayBufferBudget, data: *mut c_void, len: usize) {
  // SAFETY: V8 frees only what `allocate*` returned, with its length.
  unsafe { libc::free(data) };
  budget.release(len);
}

unsafe extern "C" fn drop_budget(budget: *const ArrayBufferBudget) {
  // SAFETY: the pointer came from `Arc::into_raw` in `allocator`, and V8
  // drops the allocator, and so this handle, once.
  drop(unsafe { Arc::from_raw(budget) });
}

static VTABLE: v8::RustAllocatorVtable<ArrayBufferBudget> = v8::RustAllocatorVtable {
  allocate,
  allocate_uninitialized,
  free,
  drop: drop_budget,
};

/// An allocator for one isolate whose ArrayBuffers may hold at most
/// `limit` bytes in all.
pub fn allocator(limit: usize) -> v8::UniqueRef<v8::Allocator> {
  let budget = Arc::new(ArrayBufferBudget {
    used: AtomicUsize::new(0),
    limit,
  });
  // SAFETY: the handle stays valid until V8 calls `drop_budget`, and the
  // vtable's functions match `ArrayBufferBudget`.
  unsafe { v8::new_rust_allocator(Arc::into_raw(budget), &VTABLE) }
}
