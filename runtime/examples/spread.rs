//! Executor CPU per request with requests spread round-robin over many
//! workers, next to the same executor serving one worker: the isolate side
//! of `scripts/bench_multitenant.py`, without HTTP or a load generator.
//!
//! Both run on one executor thread fed from this thread, 32 requests in
//! flight; the figure is that executor thread's CPU time per request. With
//! no HTTP in the way it moves much less between runs than the node-level
//! benchmark, so it is the quick check for a change on the isolate side.
//! `V8_FLAGS="--flag ..."` passes flags to V8.
//!
//! Run: `cargo run --release -p outpost-runtime --example spread [-- WORKERS ROUNDS]`

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use outpost_runtime::{
  ExecutorHandle, ExecutorOptions, RequestBody, WorkerBundle, WorkerEnv, WorkerRequest,
  WorkerVersion, spawn_executor_with,
};

// The allocator `outpost` runs with (see cli/src/main.rs), so the figures match.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const IN_FLIGHT: usize = 32;

/// CPU time of the thread named `name` in this process, in nanoseconds.
fn thread_cpu_ns(name: &str) -> u64 {
  for task in std::fs::read_dir("/proc/self/task")
    .expect("tasks")
    .flatten()
  {
    let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
    if comm.trim_end() == name {
      let stat = std::fs::read_to_string(task.path().join("schedstat")).expect("schedstat");
      return stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("ns");
    }
  }
  panic!("no thread {name}");
}

fn request(worker: usize) -> WorkerRequest {
  WorkerRequest {
    method: http::Method::GET,
    url: format!("http://w{worker}.localhost/"),
    headers: http::HeaderMap::new(),
    body: RequestBody::Empty,
    cf: None,
    scheduled: None,
    rpc: None,
    entrypoint: None,
    limits: Default::default(),
  }
}

/// Sends `count` requests, `IN_FLIGHT` at a time, request i to the worker
/// `pick(i)`; returns executor CPU ns and wall ns per request.
async fn load(
  executor: &ExecutorHandle,
  count: usize,
  pick: impl Fn(usize) -> usize,
) -> (f64, f64) {
  let cpu = thread_cpu_ns("bench-exec");
  let wall = Instant::now();
  let mut pending = FuturesUnordered::new();
  let mut sent = 0;
  let mut done = 0;
  while done < count {
    while sent < count && pending.len() < IN_FLIGHT {
      let worker = pick(sent);
      let executor = executor.clone();
      pending.push(async move {
        let name = format!("w{worker}");
        executor.dispatch(&name, request(worker)).await
      });
      sent += 1;
    }
    let response = pending.next().await.expect("pending").expect("response");
    assert_eq!(response.status, 200);
    done += 1;
  }
  let cpu = (thread_cpu_ns("bench-exec") - cpu) as f64 / count as f64;
  (cpu, wall.elapsed().as_nanos() as f64 / count as f64)
}

fn main() {
  let mut args = std::env::args()
    .skip(1)
    .map(|a| a.parse::<usize>().expect("a number"));
  let workers = args.next().unwrap_or(1000);
  let rounds = args.next().unwrap_or(3);
  if let Ok(flags) = std::env::var("V8_FLAGS") {
    let flags: Vec<String> = flags.split_whitespace().map(str::to_owned).collect();
    outpost_runtime::set_v8_flags(&flags);
  }
  let runtime = tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .expect("tokio");
  let dir = tempfile::tempdir().expect("temp dir");
  let executor = spawn_executor_with("bench-exec", ExecutorOptions::default()).expect("executor");
  runtime.block_on(async {
    for w in 0..workers {
      let entry = dir.path().join(format!("w{w}.js"));
      std::fs::write(
        &entry,
        format!("export default {{ fetch() {{ return new Response(\"w{w}\"); }} }};\n"),
      )
      .expect("write worker");
      let version = WorkerVersion {
        bundle: Arc::new(WorkerBundle::load(&entry).expect("bundle")),
        env: Arc::new(WorkerEnv::default()),
        limits: Default::default(),
      };
      executor
        .stage(&format!("w{w}"), version)
        .await
        .expect("stage");
    }
    let spread = |i: usize| i % workers;
    let (cpu, _) = load(&executor, workers, spread).await;
    println!(
      "first request of each worker: {:.1} us executor CPU",
      cpu / 1e3
    );
    for _ in 0..6 {
      let (cpu, wall) = load(&executor, workers * 200, spread).await;
      println!(
        "warm-up spread: {:.2} us CPU {:.2} us wall per request",
        cpu / 1e3,
        wall / 1e3
      );
    }
    let per_round = (workers * 50).max(20_000);
    for round in 1..=rounds {
      let (s_cpu, s_wall) = load(&executor, per_round, spread).await;
      let (o_cpu, o_wall) = load(&executor, per_round, |_| 0).await;
      println!(
        "round {round}: spread {:.2} us ({:.2} wall)  single {:.2} us ({:.2} wall)  ratio x{:.2}",
        s_cpu / 1e3,
        s_wall / 1e3,
        o_cpu / 1e3,
        o_wall / 1e3,
        s_cpu / o_cpu
      );
    }
  });
}
