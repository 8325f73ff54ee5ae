#!/usr/bin/env python3
"""KV benchmarks on loopback: the hot get from JS, a cold get through the
control plane, and the throughput of a worker doing one get per request
next to the hello worker, measured side by side.

Usage (after `cargo build --release -p outpost`; needs wrk):
  scripts/bench_kv.py [--binary target/release/outpost] [--rounds 3]
                      [--seconds 5] [--conns 32]

It starts `outpost control` and one `outpost edge --control` (fresh
temporary folders), makes a namespace, and deploys three workers: `bench`
(the timing endpoints below), `kvget` (one `env.KV.get("hot")` per
request) and `hello` (the same response without KV).

- Hot get: `bench` reads one cached key 100,000 times in 100 batches of
  1,000, timing each batch with performance.now(); the figure is the p50
  of the per-get time of the batches.
- Cold get: the control plane holds 300 keys no edge has read; `bench`
  reads each once, timing each get (a miss, then the sync connection's
  stream to the control plane and back). p50 and p99.
- Throughput: wrk against `kvget` and `hello` in alternation, round after
  round; requests/s and the edge's CPU time per request (from /proc), as
  medians, and their ratios.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import HZ, call, cpu_ticks, start, wrk

BENCH_WORKER = r"""
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/hot") {
      await env.KV.get("hot");
      const perGet = [];
      for (let batch = 0; batch < 100; batch++) {
        const start = performance.now();
        for (let i = 0; i < 1000; i++) await env.KV.get("hot");
        perGet.push(((performance.now() - start) * 1000) / 1000);
      }
      return Response.json(perGet);
    }
    if (url.pathname === "/cold") {
      const prefix = url.searchParams.get("prefix");
      const took = [];
      for (let i = 0; i < 300; i++) {
        const start = performance.now();
        const value = await env.KV.get(`${prefix}${i}`);
        took.push((performance.now() - start) * 1000);
        if (value === null) throw new Error(`missing ${prefix}${i}`);
      }
      return Response.json(took);
    }
    return new Response("no such benchmark", { status: 404 });
  },
};
"""

KVGET_WORKER = r"""
export default {
  async fetch(request, env) {
    return new Response(await env.KV.get("hot"));
  },
};
"""

HELLO_WORKER = r"""
export default {
  async fetch() {
    return new Response("Hello from a KV benchmark, without KV at all.");
  },
};
"""

HOT_VALUE = "Hello from a KV benchmark, without KV at all."


def get_json(url, host):
    request = urllib.request.Request(url, headers={"Host": host})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="target/release/outpost")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=32)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="outpost-kv-bench-")
    processes = []
    try:
        control, lines = start(args.binary, ["control", "--data", f"{work}/control", "--listen",
                                             "127.0.0.1:0", "--sync-listen", "127.0.0.1:0"],
                               "API at")
        processes.append(control)
        admin = next(line for line in lines if line.startswith("opt_"))
        api = next(w for w in lines[-1].split() if w.startswith("http://"))
        join = call(api, admin, "POST", "/tokens", {"scope": "edge-join"})["token"]
        edge, lines = start(args.binary, ["edge", "--control", api, "--join", join, "--data",
                                          f"{work}/edge", "--port", "0"], "at http://")
        processes.append(edge)
        url = next(w for w in lines[-1].split() if w.startswith("http://")).rstrip("/")

        ns = call(api, admin, "POST", "/kv/namespaces", {"title": "bench"})["namespace"]["id"]
        call(api, admin, "PUT", f"/kv/namespaces/{ns}/values/hot", raw=HOT_VALUE.encode())
        for name, source in [("bench", BENCH_WORKER), ("kvget", KVGET_WORKER),
                             ("hello", HELLO_WORKER)]:
            # The timing loops run far past the default per-request CPU limit.
            bundle = {"main": "worker.js", "modules": {"worker.js": source},
                      "kv_namespaces": [{"binding": "KV", "id": ns}],
                      "limits": {"cpu_ms": 60000, "wall_ms": 120000}}
            number = call(api, admin, "POST", f"/workers/{name}/versions", bundle)["version"]["number"]
            call(api, admin, "PUT", "/routes", {"pattern": f"{name}.test/*", "worker": name})
            epoch = call(api, admin, "POST", f"/workers/{name}/deployments",
                         {"version": number})["deployment"]["epoch"]
        deadline = time.time() + 30
        while any(e["epoch"] < epoch for e in call(api, admin, "GET", "/edges")["edges"]):
            if time.time() > deadline:
                sys.exit("the edge did not ack the deployments")
            time.sleep(0.05)

        hot = get_json(f"{url}/hot", "bench.test")
        print(f"hot get (cache hit), per get over 100 x 1,000 reads: "
              f"p50 {statistics.median(hot):.2f} us, min {min(hot):.2f} us, max {max(hot):.2f} us")

        cold = []
        for round_ in range(3):
            prefix = f"cold{round_}:"
            pairs = [{"key": f"{prefix}{i}", "value": f"value {i}"} for i in range(300)]
            call(api, admin, "PUT", f"/kv/namespaces/{ns}/bulk", pairs)
            cold += get_json(f"{url}/cold?prefix={prefix}", "bench.test")
        print(f"cold get (through the control plane), {len(cold)} reads: "
              f"p50 {statistics.median(cold):.0f} us, p99 {percentile(cold, 0.99):.0f} us")

        results = {"kvget": [], "hello": []}
        for _ in range(args.rounds):
            for host in results:
                wrk(f"{url}/", 1, args.conns, f"{host}.test")  # warm
                before = cpu_ticks(edge.pid)
                requests, rps = wrk(f"{url}/", args.seconds, args.conns, f"{host}.test")
                cpu_us = (cpu_ticks(edge.pid) - before) / HZ * 1e6 / max(requests, 1)
                results[host].append((rps, cpu_us))
        med = {h: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v))
               for h, v in results.items()}
        for host, (rps, cpu) in med.items():
            print(f"{host:6} {rps:10.0f} req/s  {cpu:6.1f} us CPU/request")
        print(f"kvget/hello: rps x{med['kvget'][0] / med['hello'][0]:.2f}, "
              f"CPU/request x{med['kvget'][1] / med['hello'][1]:.2f}")
    finally:
        for process in processes:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
