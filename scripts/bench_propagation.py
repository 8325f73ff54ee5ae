#!/usr/bin/env python3
"""Propagation time of a deployment: from the control plane's answer to
the deploy call until every edge node serves the new version.

Usage (after `cargo build --release -p outpost`):
  scripts/bench_propagation.py [--edges 3] [--deployments 50]
                               [--binary target/release/outpost]

It starts `outpost control` and N `outpost edge --control` nodes on
loopback (fresh temporary data folders), routes `*/bench/*` to a worker,
then deploys a new version again and again. For each deployment it
uploads the bundle first (not timed), starts the clock when the deploy
call returns, and polls every edge until each answers with the new
version's text; the slowest edge's time is the sample. Prints p50, p99
and max.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request

from benchlib import call, start_cluster


def text_of(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except Exception:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edges", type=int, default=3)
    ap.add_argument("--deployments", type=int, default=50)
    ap.add_argument("--binary", default="target/release/outpost")
    args = ap.parse_args()
    processes = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            api, token, edges = start_cluster(args.binary, tmp, args.edges, processes)

            def upload(text):
                bundle = {"main": "worker.js", "modules": {
                    "worker.js": f"export default {{ fetch() {{ return new Response({json.dumps(text)}); }} }};"}}
                return call(api, token, "POST", "/workers/bench/versions", bundle)["version"]["number"]

            first = upload("v0")
            call(api, token, "POST", "/workers/bench/deployments", {"version": first})
            call(api, token, "PUT", "/routes", {"pattern": "*/bench/*", "worker": "bench"})
            for url in edges:
                while text_of(f"{url}/bench/") != "v0":
                    time.sleep(0.01)

            samples = []
            for i in range(1, args.deployments + 1):
                text = f"v{i}"
                number = upload(text)
                call(api, token, "POST", "/workers/bench/deployments", {"version": number})
                started = time.perf_counter()
                waiting = set(edges)
                while waiting:
                    waiting = {url for url in waiting if text_of(f"{url}/bench/") != text}
                    if time.perf_counter() - started > 30:
                        sys.exit(f"deployment {i}: {sorted(waiting)} still not serving {text}")
                samples.append((time.perf_counter() - started) * 1000)
            samples.sort()
            p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
            print(f"{args.deployments} deployments to {args.edges} edges: "
                  f"p50 {statistics.median(samples):.1f} ms, p99 {p99:.1f} ms, max {samples[-1]:.1f} ms")
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
