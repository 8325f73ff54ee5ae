//! Measures isolate start-up: a blank isolate from the snapshot, and a
//! staged worker's first request (isolate, module evaluation, one request
//! and its response head), with and without the pool; each worker's second
//! request is timed too, for what a request costs once started.
//!
//! Run: `cargo run --release -p outpost-runtime --example startup [-- ROUNDS]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_runtime::{
  ExecutorOptions, RequestBody, WorkerBundle, WorkerEnv, WorkerRequest, WorkerVersion,
  blank_isolate, spawn_executor_with,
};

fn summary(label: &str, mut samples: Vec<Duration>) {
  samples.sort();
  let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
  let ms = |d: Duration| d.as_secs_f64() * 1e3;
  println!(
    "{label:<44} n={:<5} p50 {:>7.3} ms   p99 {:>7.3} ms   min {:>7.3} ms",
    samples.len(),
    ms(at(0.5)),
    ms(at(0.99)),
    ms(samples[0]),
  );
}

/// A module of about `bytes` bytes: many small functions, as bundlers emit.
fn large_worker(bytes: usize) -> String {
  let mut source = String::from("const table = [];\n");
  let mut i = 0;
  while source.len() < bytes {
    source.push_str(&format!(
      "function helper{i}(x) {{ const y = x * {i} + 1; return y % 7 === 0 ? 'seven-' + y : String(y); }}\ntable.push(helper{i});\n"
    ));
    i += 1;
  }
  source.push_str(
    "export default { fetch() { return new Response(table[3](2) + ' of ' + table.length); } };\n",
  );
  source
}

async fn first_requests(label: &str, entry: &std::path::Path, rounds: usize, pool_size: usize) {
  let bundle = Arc::new(WorkerBundle::load(entry).expect("bundle builds"));
  let version = WorkerVersion {
    bundle,
    env: Arc::new(WorkerEnv::default()),
    limits: Default::default(),
  };
  let executor = spawn_executor_with(
    "bench-exec",
    ExecutorOptions {
      pool_size,
      ..Default::default()
    },
  )
  .expect("executor");
  let request = || WorkerRequest {
    method: http::Method::GET,
    url: "http://bench.localhost/".into(),
    headers: http::HeaderMap::new(),
    body: RequestBody::Empty,
    cf: None,
    scheduled: None,
    rpc: None,
    entrypoint: None,
    limits: Default::default(),
  };
  let mut samples = Vec::with_capacity(rounds);
  let mut later = Vec::with_capacity(rounds);
  for round in 0..rounds {
    let name = format!("worker-{round}");
    // Staged, as an edge node does: the isolate starts on this request.
    executor.stage(&name, version.clone()).await.expect("stage");
    let start = Instant::now();
    let response = executor.dispatch(&name, request()).await.expect("response");
    assert_eq!(response.status, 200);
    samples.push(start.elapsed());
    let start = Instant::now();
    let response = executor.dispatch(&name, request()).await.expect("response");
    assert_eq!(response.status, 200);
    later.push(start.elapsed());
    if pool_size > 0 {
      // Let the pool refill, as it does between arrivals on a real node.
      tokio::time::sleep(Duration::from_millis(30)).await;
    }
  }
  summary(label, samples);
  summary("  its second request", later);
}

fn main() {
  let rounds: usize = std::env::args()
    .nth(1)
    .and_then(|a| a.parse().ok())
    .unwrap_or(200);
  let runtime = tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .expect("tokio");
  let _guard = runtime.enter();

  // Warm up V8's platform and the page cache.
  drop(blank_isolate().expect("isolate"));
  let mut samples = Vec::with_capacity(rounds);
  for _ in 0..rounds {
    let start = Instant::now();
    let cell = blank_isolate().expect("isolate");
    samples.push(start.elapsed());
    drop(cell);
  }
  summary("blank isolate from snapshot", samples);

  let hello = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/hello/worker.js");
  let dir = std::env::temp_dir().join(format!("outpost-startup-{}", std::process::id()));
  std::fs::create_dir_all(&dir).expect("temp dir");
  let large = dir.join("worker.js");
  std::fs::write(&large, large_worker(100 * 1024)).expect("write worker");
  // Cold: no pool, the isolate is created for the request. Warm: a
  // pre-warmed isolate from the executor's pool is bound to the worker.
  let warm = ExecutorOptions::default().pool_size;
  for (kind, pool_size) in [("cold", 0), ("warm", warm)] {
    for (what, entry) in [("fixtures/hello", &hello), ("100 KiB script", &large)] {
      let label = format!("first request, {kind} ({what})");
      runtime.block_on(first_requests(&label, entry, rounds, pool_size));
    }
  }
  let _ = std::fs::remove_dir_all(&dir);
}
