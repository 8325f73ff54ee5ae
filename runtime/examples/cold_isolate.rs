//! What V8 itself costs to visit an isolate whose memory is cold, as on a
//! node serving many workers round-robin: each step below runs in N blank
//! isolates in turn (cold: each was last touched N visits earlier) and then
//! N times in one isolate (hot), and prints nanoseconds per visit and the
//! 4 KiB pages of V8 heap each cold visit touched (Linux `clear_refs`).
//! The steps build on each other, so their differences price each part.
//!
//! Run: `cargo run --release -p outpost-runtime --example cold_isolate [-- ISOLATES]`

use std::collections::HashMap;
use std::time::Instant;

use deno_core::v8;
use outpost_runtime::{IsolateCell, blank_isolate};

// The allocator `outpost` runs with (see cli/src/main.rs), so the figures match.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const SETUP: &str = r#"
  globalThis.empty = function () {};
  globalThis.object = function () { return { status: 200, body: "hello" }; };
  globalThis.response = function () { return new Response("hello"); };
  globalThis.request = function () { return new Request("http://w1.localhost/"); };
  globalThis.both = function () { const r = new Request("http://w1.localhost/"); return new Response(r.method); };
"#;
const FUNCTIONS: [&str; 5] = ["empty", "object", "response", "request", "both"];
/// Calls per function and isolate before measuring, so V8 has tiered up.
const WARM_CALLS: usize = 1000;

/// An isolate with handles to its context and the functions of `SETUP`.
struct Visited {
  cell: IsolateCell,
  context: v8::Global<v8::Context>,
  functions: HashMap<&'static str, v8::Global<v8::Function>>,
}

impl Visited {
  fn new() -> Self {
    let mut cell = blank_isolate().expect("isolate");
    let (context, functions) = cell.with(|runtime| {
      runtime.execute_script("setup", SETUP).expect("setup runs");
      let context = runtime.main_context();
      deno_core::scope!(scope, runtime);
      let global = scope.get_current_context().global(scope);
      let functions = FUNCTIONS
        .iter()
        .map(|&name| {
          let key = v8::String::new(scope, name).expect("key");
          let value = global.get(scope, key.into()).expect("global");
          let function = v8::Local::<v8::Function>::try_from(value).expect("function");
          (name, v8::Global::new(scope, function))
        })
        .collect();
      (context, functions)
    });
    Self {
      cell,
      context,
      functions,
    }
  }

  fn enter(&mut self) {
    self.cell.with(|_| ());
  }

  fn scope(&mut self) {
    let context = &self.context;
    self.cell.with(|runtime| {
      v8::scope!(let scope, runtime.v8_isolate());
      let context = v8::Local::new(scope, context);
      let _scope = &mut v8::ContextScope::new(scope, context);
    });
  }

  fn call(&mut self, name: &str) {
    let (context, function) = (&self.context, &self.functions[name]);
    self.cell.with(|runtime| {
      v8::scope!(let scope, runtime.v8_isolate());
      let context = v8::Local::new(scope, context);
      let scope = &mut v8::ContextScope::new(scope, context);
      v8::tc_scope!(let scope, scope);
      let function = v8::Local::new(scope, function);
      let undefined = v8::undefined(scope).into();
      function.call(scope, undefined, &[]).expect("call returns");
    });
  }
}

/// 4 KiB pages of 256 KiB mappings (V8's heap pages) referenced since the
/// last `clear_referenced`.
fn heap_pages_referenced() -> u64 {
  let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
  let mut in_heap_page = false;
  let mut pages = 0;
  for line in smaps.lines() {
    if let Some(kb) = line.strip_prefix("Referenced:") {
      if in_heap_page {
        pages += kb
          .trim()
          .trim_end_matches("kB")
          .trim()
          .parse::<u64>()
          .unwrap_or(0)
          / 4;
      }
    } else if let Some((range, _)) = line.split_once(' ')
      && let Some((start, end)) = range.split_once('-')
      && let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
    {
      in_heap_page = end - start == 256 * 1024;
    }
  }
  pages
}

fn clear_referenced() {
  std::fs::write("/proc/self/clear_refs", "1").expect("clear_refs (Linux only)");
}

fn main() {
  let count: usize = std::env::args()
    .nth(1)
    .and_then(|a| a.parse().ok())
    .unwrap_or(1000);
  // V8 posts delayed tasks through deno_core, which needs a Tokio context.
  let tokio = tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .expect("tokio");
  let _context = tokio.enter();
  let mut isolates: Vec<Visited> = (0..count).map(|_| Visited::new()).collect();
  for _ in 0..WARM_CALLS {
    for isolate in isolates.iter_mut() {
      for name in FUNCTIONS {
        isolate.call(name);
      }
    }
  }
  type Step = fn(&mut Visited);
  let steps: [(&str, Step); 8] = [
    ("enter and exit the isolate", |i| i.enter()),
    ("+ handle and context scopes", |i| i.scope()),
    ("+ call an empty function", |i| i.call("empty")),
    ("+ call: return an object literal", |i| i.call("object")),
    ("+ call: new Response(string)", |i| i.call("response")),
    ("+ call: new Request(url)", |i| i.call("request")),
    ("+ call: both", |i| i.call("both")),
    ("nothing (baseline for pages)", |_| ()),
  ];
  println!("{count} isolates; ns per visit, cold (round-robin) and hot (one isolate)");
  for (label, step) in steps {
    let sample = count.min(200);
    clear_referenced();
    for isolate in isolates[..sample].iter_mut() {
      step(isolate);
    }
    let pages = heap_pages_referenced() as f64 / sample as f64;
    let passes = 5;
    let started = Instant::now();
    for _ in 0..passes {
      for isolate in isolates.iter_mut() {
        step(isolate);
      }
    }
    let cold = started.elapsed().as_nanos() as f64 / (passes * count) as f64;
    let started = Instant::now();
    for _ in 0..passes * count {
      step(&mut isolates[0]);
    }
    let hot = started.elapsed().as_nanos() as f64 / (passes * count) as f64;
    println!("{label:<36} cold {cold:>7.0}  hot {hot:>6.0}  heap pages {pages:>5.1}");
  }
}
