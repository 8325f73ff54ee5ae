#!/usr/bin/env python3
"""RPC over a service binding against an in-isolate call: a worker makes
10,000 calls in a loop, `await env.MATH.add(i, 1)` to another worker of the
same edge, then `await add(i, 1)` to a function of its own (a hundred
times as many, for the CPU clock's resolution); the
edge's CPU time (every thread) over each loop, per call, side by side in
one run (docs/benchmarks.md).

    scripts/bench_rpc.py [--calls 10000] [--rounds 5] [--binary target/release/outpost]

Each round runs both loops once; the figures are the medians.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import HZ, cpu_ticks, start_local_edge  # noqa: E402

MATH = """
import { WorkerEntrypoint } from "cloudflare:workers";
export default class extends WorkerEntrypoint {
  add(a, b) { return a + b; }
  fetch() { return new Response("math"); }
}
"""

CALLER = """
async function add(a, b) { return a + b; }
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const calls = Number(url.searchParams.get("calls"));
    let sum = 0;
    if (url.pathname.endsWith("/rpc")) {
      for (let i = 0; i < calls; i++) sum = await env.MATH.add(sum, 1);
    } else {
      for (let i = 0; i < calls; i++) sum = await add(sum, 1);
    }
    return new Response(String(sum));
  },
};
"""


def get(url):
    with urllib.request.urlopen(url, timeout=600) as response:
        return response.read().decode()


def measured(pid, url, calls):
    """CPU seconds of the edge while `url` runs, checking its answer."""
    before = cpu_ticks(pid)
    answer = get(url)
    spent = (cpu_ticks(pid) - before) / HZ
    if answer != str(calls):
        sys.exit(f"{url} answered {answer!r}")
    return spent


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--binary", default="target/release/outpost")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        edge, base = start_local_edge(args.binary, work, [
            ("math", MATH, ""),
            ("caller", CALLER, f"[limits]\ncpu_ms = 600000\nwall_ms = 600000\n"
                               f"subrequests = {args.calls}\n\n"
                               "[[services]]\nbinding = \"MATH\"\nservice = \"math\"\n"),
        ])
        try:
            # Warm both paths: isolates started, code compiled.
            get(f"{base}/caller/rpc?calls=100")
            get(f"{base}/caller/local?calls=100")
            rpc, local = [], []
            for _ in range(args.rounds):
                rpc.append(measured(edge.pid, f"{base}/caller/rpc?calls={args.calls}", args.calls))
                # A hundred times as many: one loop of in-isolate calls is
                # shorter than the CPU clock's 10 ms tick.
                local.append(measured(edge.pid, f"{base}/caller/local?calls={args.calls * 100}",
                                      args.calls * 100) / 100)
                time.sleep(0.2)
            rpc_us = statistics.median(rpc) / args.calls * 1e6
            local_us = statistics.median(local) / args.calls * 1e6
            print(f"{args.calls} calls, median of {args.rounds} rounds, edge CPU per call:")
            print(f"  RPC over a service binding: {rpc_us:.2f} us")
            print(f"  in-isolate async call:      {local_us:.3f} us")
            print(f"  ratio: {rpc_us / max(local_us, 1e-9):.0f}x")
        finally:
            edge.kill()
            edge.wait()


if __name__ == "__main__":
    main()
