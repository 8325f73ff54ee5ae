#!/usr/bin/env python3
"""Cron firing jitter: how long after its scheduled time a deployed
worker's scheduled() starts, on the real clock.

Usage (after `cargo build --release -p outpost`):
  scripts/bench_cron_jitter.py [--edges 3] [--workers 30] [--minutes 4]
                               [--binary target/release/outpost]

It starts `outpost control` and N `outpost edge --control` nodes on
loopback, deploys W workers with `* * * * *`, and lets them fire for M
minutes. Each run records Date.now() - controller.scheduledTime in its
own KV key; the script lists the keys and prints p50, p99 and max over
every run, and how many runs there were against how many were due (each
firing runs once, so they should match).
"""
import argparse
import statistics
import tempfile
import time

from benchlib import call, start_cluster

WORKER = """export default {
  fetch() { return new Response("cron"); },
  async scheduled(controller, env) {
    const lag = Date.now() - controller.scheduledTime;
    await env.LAG.put(`${controller.scheduledTime}:${lag}:${crypto.randomUUID()}`, "");
  },
};
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edges", type=int, default=3)
    ap.add_argument("--workers", type=int, default=30)
    ap.add_argument("--minutes", type=int, default=4)
    ap.add_argument("--binary", default="target/release/outpost")
    args = ap.parse_args()
    processes = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            api, token, _ = start_cluster(args.binary, tmp, args.edges, processes)
            ns = call(api, token, "POST", "/kv/namespaces", {"title": "lag"})["namespace"]["id"]
            for w in range(args.workers):
                bundle = {"main": "worker.js", "modules": {"worker.js": WORKER},
                          "kv_namespaces": [{"binding": "LAG", "id": ns}], "crons": ["* * * * *"]}
                call(api, token, "POST", f"/workers/cron{w}/versions", bundle)
                call(api, token, "POST", f"/workers/cron{w}/deployments", {"version": 1})
            started = time.time()
            # Firings due: each whole minute after the deployments, until the end.
            end = started + args.minutes * 60
            due_minutes = int(end // 60) - int(started // 60)
            print(f"{args.workers} workers on {args.edges} edges, {args.minutes} minutes "
                  f"({due_minutes} firings each)...", flush=True)
            time.sleep(max(0.0, (int(end // 60) * 60 + 5) - time.time()))
            lags = []
            cursor = ""
            while True:
                page = call(api, token, "GET", f"/kv/namespaces/{ns}/keys?cursor={cursor}")
                lags += [int(key["name"].split(":")[1]) for key in page["keys"]]
                cursor = page.get("cursor") or ""
                if page["list_complete"] or not cursor:
                    break
            lags.sort()
            due = due_minutes * args.workers
            print(f"runs: {len(lags)} of {due} due")
            if lags:
                p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
                print(f"delay after the scheduled time (ms): p50 {statistics.median(lags):.0f}  "
                      f"p99 {p99}  max {lags[-1]}")
        finally:
            for process in processes:
                process.kill()


if __name__ == "__main__":
    main()
