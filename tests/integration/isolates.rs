//! The enter/exit discipline: many isolates on one thread, used interleaved
//! and dropped in a scrambled order, without V8's nesting panics.

use outpost_runtime::{IsolateCell, blank_isolate};

const ISOLATES: usize = 300;

/// A fixed permutation of 0..n that is far from creation order.
fn scrambled(n: usize) -> Vec<usize> {
  let mut order: Vec<usize> = (0..n).collect();
  let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
  for i in (1..n).rev() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    order.swap(i, (state % (i as u64 + 1)) as usize);
  }
  order
}

#[test]
fn isolates_are_used_interleaved_and_dropped_out_of_order() {
  let runtime = tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .expect("tokio");
  let _guard = runtime.enter();
  let mut cells: Vec<IsolateCell> = (0..ISOLATES)
    .map(|_| blank_isolate().expect("isolate"))
    .collect();

  for (i, cell) in cells.iter_mut().enumerate() {
    cell
      .with(|rt| {
        rt.execute_script(
          "set.js",
          format!("globalThis.n = {i}; setTimeout(() => globalThis.fired = {i}, 1);"),
        )
      })
      .expect("set");
  }
  let order = scrambled(ISOLATES);
  for &i in &order {
    // Each isolate kept its own globals, and its event loop runs its own timer.
    runtime
      .block_on(cells[i].run(|rt| rt.run_event_loop(Default::default())))
      .expect("event loop");
    cells[i]
      .with(|rt| rt.execute_script("check.js", format!("if (globalThis.n !== {i} || globalThis.fired !== {i}) throw new Error('isolate {i} saw ' + globalThis.n);")))
      .expect("isolate kept its state");
  }

  let mut remaining = cells;
  for &i in order.iter().rev() {
    let index = i % remaining.len();
    drop(remaining.swap_remove(index));
  }
}
