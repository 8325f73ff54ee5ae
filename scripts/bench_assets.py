#!/usr/bin/env python3
"""Static assets against the same file from a worker: requests/s and CPU
per request of one `outpost dev`, measured side by side.

Usage (after `cargo build --release -p outpost`; needs wrk):
  scripts/bench_assets.py [--binary target/release/outpost] [--rounds 3]
                          [--seconds 5] [--conns 32] [--size 16384]

It writes a project whose `public/page.html` is SIZE bytes of HTML and
whose worker answers `/from-worker` with the very same bytes (imported as
a string module) and the same content type; `run_worker_first` sends that
path to the worker. Then wrk runs against `/page.html` (the asset, served
without an isolate) and `/from-worker` in alternation, round after round;
the figures are the medians of requests/s and of the process's CPU time
per request (from /proc), and their ratios.
"""
import argparse
import json
import os
import statistics
import tempfile

from benchlib import HZ, cpu_ticks, start, wrk

WORKER = """import page from "./page.js";
export default {
  fetch() {
    return new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } });
  },
};
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="target/release/outpost")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--size", type=int, default=16384)
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    with tempfile.TemporaryDirectory() as project:
        line = "<p>" + "outpost static asset benchmark " * 3 + "</p>\n"
        page = ("<!doctype html>\n" + line * (args.size // len(line) + 1))[: args.size]
        os.makedirs(f"{project}/public")
        with open(f"{project}/public/page.html", "w") as f:
            f.write(page)
        with open(f"{project}/page.js", "w") as f:
            f.write("export default " + json.dumps(page) + ";\n")
        with open(f"{project}/worker.js", "w") as f:
            f.write(WORKER)
        with open(f"{project}/wrangler.toml", "w") as f:
            f.write('name = "assets-bench"\nmain = "worker.js"\n\n[assets]\n'
                    'directory = "public"\nrun_worker_first = ["/from-worker"]\n')
        os.chdir(project)
        dev, lines = start(binary, ["dev", "--port", "0", "--no-watch", "--log", "warn"],
                           "serving")
        try:
            url = next(w for w in lines[-1].split() if w.startswith("http://")).rstrip("/")
            results = {"asset": [], "worker": []}
            for name, path in (("asset", "/page.html"), ("worker", "/from-worker")):
                wrk(url + path, 1, args.conns)  # warm-up
            for _ in range(args.rounds):
                for name, path in (("asset", "/page.html"), ("worker", "/from-worker")):
                    before = cpu_ticks(dev.pid)
                    requests, rps = wrk(url + path, args.seconds, args.conns)
                    cpu_us = (cpu_ticks(dev.pid) - before) / HZ * 1e6 / max(requests, 1)
                    results[name].append((rps, cpu_us))
            median = {k: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v))
                      for k, v in results.items()}
            print(f"{args.size}-byte page, {args.conns} connections, {args.rounds} rounds of "
                  f"{args.seconds} s each")
            for name, (rps, cpu) in median.items():
                print(f"  {name:7} {rps:10.0f} req/s  {cpu:7.1f} us CPU/request")
            print(f"  asset/worker: {median['asset'][0] / median['worker'][0]:.2f}x requests/s, "
                  f"worker/asset: {median['worker'][1] / median['asset'][1]:.2f}x CPU per request")
        finally:
            dev.kill()


if __name__ == "__main__":
    main()
