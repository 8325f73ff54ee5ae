#!/usr/bin/env python3
"""Many workers on one edge node: memory per resident worker, and
throughput and server CPU per request with requests spread round-robin over
every worker, next to the same node serving one worker.

Usage (after `cargo build --release -p outpost`):
  scripts/bench_multitenant.py [--workers 1000] [--seconds 10] [--conns 32]
                               [--rounds 3] [--warmup 30]
                               [--binary target/release/outpost]
                               [--node-arg=--v8-flags=...]

It generates N small workers (each answers its own name) into a temporary
folder and serves them with `outpost edge --local`. A warm-up of spread
load comes first (reported on its own): each isolate tiers its request path
up from V8's interpreter only after a few hundred requests, so the first
half minute of round-robin load costs more per request than the rest. Then,
in alternation, round after round (machine noise hits both alike):

  spread   wrk sends request i to worker i mod N
  single   wrk sends every request to one worker

and prints the medians of requests/s, server CPU per request (user+sys of
the whole process, from /proc) and wrk's p99, plus the RSS after every worker
has answered once (so all N are resident; workers start on their first
request). Needs wrk.
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

WORKER = 'export default {{ fetch() {{ return new Response("{name}"); }} }};\n'

ROUND_ROBIN_LUA = """
local n = {workers}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/w" .. (i % n) .. "/")
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def minor_faults(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def wait_ready(port, deadline=60):
    end = time.time() + deadline
    while time.time() < end:
        try:
            get(f"http://127.0.0.1:{port}/w0/")
            return
        except Exception:
            time.sleep(0.2)
    sys.exit("the node did not answer")


def parse_wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, total, float(p99.group(1)) * scale, int(errors.group(1)) if errors else 0


def run_wrk(pid, port, seconds, conns, script):
    before = cpu_seconds(pid)
    faults_before = minor_faults(pid)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", script,
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout
    used = cpu_seconds(pid) - before
    faults = minor_faults(pid) - faults_before
    rps, total, p99, errors = parse_wrk(out)
    return rps, used / total * 1e6, p99, errors, faults / total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=30,
                    help="seconds of spread load before the measured rounds (0: none)")
    ap.add_argument("--binary", default="target/release/outpost")
    ap.add_argument("--node-arg", action="append", default=[],
                    help="an extra argument for `outpost edge` (repeatable)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "workers")
        for i in range(args.workers):
            os.makedirs(os.path.join(root, f"w{i}"))
            with open(os.path.join(root, f"w{i}", "worker.js"), "w") as f:
                f.write(WORKER.format(name=f"w{i}"))
        spread = os.path.join(tmp, "spread.lua")
        with open(spread, "w") as f:
            f.write(ROUND_ROBIN_LUA.format(workers=args.workers))
        single = os.path.join(tmp, "single.lua")
        with open(single, "w") as f:
            f.write(ROUND_ROBIN_LUA.format(workers=1))

        port = free_port()
        node = subprocess.Popen(
            [args.binary, "edge", "--local", root, "--port", str(port), "--log", "warn",
             *args.node_arg],
        )
        try:
            wait_ready(port)
            idle_rss = rss_mib(node.pid)
            started = time.time()
            for i in range(args.workers):
                body = get(f"http://127.0.0.1:{port}/w{i}/")
                if body != f"w{i}":
                    sys.exit(f"w{i} answered {body!r}")
            print(f"{args.workers} workers each answered once in {time.time() - started:.1f} s")
            time.sleep(2)
            full_rss = rss_mib(node.pid)
            per_worker = (full_rss - idle_rss) / max(args.workers - 1, 1)
            print(f"RSS with 1 worker resident: {idle_rss:.0f} MiB; with {args.workers}: "
                  f"{full_rss:.0f} MiB; about {per_worker:.2f} MiB per resident worker")

            if args.warmup > 0:
                rps, cpu_us, p99, errors, faults = run_wrk(
                    node.pid, port, args.warmup, args.conns, spread)
                print(f"warm-up spread {args.warmup} s: rps={rps:.0f} cpu/req={cpu_us:.2f}us "
                      f"p99={p99:.2f}ms errors={errors}; RSS {rss_mib(node.pid):.0f} MiB")

            results = {"spread": [], "single": []}
            for r in range(args.rounds):
                for label, script in (("spread", spread), ("single", single)):
                    rps, cpu_us, p99, errors, faults = run_wrk(node.pid, port, args.seconds, args.conns, script)
                    results[label].append((rps, cpu_us, p99))
                    print(f"round {r + 1} {label:<6} rps={rps:>9.0f} cpu/req={cpu_us:>7.2f}us "
                          f"p99={p99:.2f}ms faults/req={faults:.2f} errors={errors}")
            print(f"\nworkers={args.workers} warmup={args.warmup} rounds={args.rounds} "
                  f"seconds={args.seconds} conns={args.conns}")
            print(f"{'load':<8}{'rps':>9}{'cpu_us/req':>12}{'p99_ms':>9}")
            med = {}
            for label, runs in results.items():
                med[label] = [statistics.median(x) for x in zip(*runs)]
                print(f"{label:<8}{med[label][0]:>9.0f}{med[label][1]:>12.2f}{med[label][2]:>9.2f}")
            print(f"ratio spread/single: rps x{med['spread'][0] / med['single'][0]:.2f}, "
                  f"cpu/req x{med['spread'][1] / med['single'][1]:.2f} (lower is better)")
            print(f"RSS at the end of the load: {rss_mib(node.pid):.0f} MiB")
            time.sleep(10)
            print(f"RSS 10 s later: {rss_mib(node.pid):.0f} MiB")
        finally:
            node.terminate()
            node.wait(timeout=30)


if __name__ == "__main__":
    main()
