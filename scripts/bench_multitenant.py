#!/usr/bin/env python3
"""Many workers on one edge node: memory per resident worker, and
throughput and server CPU per request with requests spread round-robin over
every worker, next to the same node serving one worker.

Usage (after `cargo build --release -p outpost`):
  scripts/bench_multitenant.py [--workers 1000] [--seconds 10] [--conns 32]
                               [--rounds 3] [--warmup 30]
                               [--binary target/release/outpost]
                               [--node-arg=--v8-flags=...]
                               [--compare OTHER_BINARY]
                               [--compare-arg=--v8-flags=...]
                               [--pages]

It generates N small workers (each answers its own name) into a temporary
folder and serves them with `outpost edge --local`. A warm-up of spread
load comes first (reported on its own): each isolate tiers its request path
up from V8's interpreter only after a few hundred requests, so the first
half minute of round-robin load costs more per request than the rest. Then,
in alternation, round after round (machine noise hits both alike):

  spread   wrk sends request i to worker i mod N
  single   wrk sends every request to one worker

and prints the medians of requests/s, server CPU per request (user+sys of
the whole process, from /proc, and of that the executor threads' share,
which is where isolates run) and wrk's p99, plus the RSS after every worker
has answered once (so all N are resident; workers start on their first
request). Needs wrk.

With --pages it also counts the 4 KiB pages of the node's memory that 50
requests touch, spread over 50 workers or all to one (Linux `clear_refs`
and the Referenced field of /proc/<pid>/smaps; needs root), by kind of
mapping: V8's heap pages are its 256 KiB mappings, JIT code the
executable ones. A spread request pays for each page its isolate touches
again, since a thousand requests to other isolates have passed since.

With --compare (or only --compare-arg), a second node serves the same
workers alongside: the two are measured in alternation, which is the only
way to compare builds or flags on a shared, noisy machine. The executor
CPU per request is the steadiest figure between two identical nodes
(within about 1 %); the rest moves with the machine.
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
    """User+sys CPU of the whole process, and of its executor threads."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = executors = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread exited meanwhile
        used = (int(fields[11]) + int(fields[12])) / ticks
        total += used
        if comm.startswith("outpost-exec"):
            executors += used
    return total, executors


def minor_faults(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def referenced_pages(pid):
    """4 KiB pages referenced since the last clear, by kind of mapping."""
    pages = {"v8 heap": 0, "jit code": 0, "other anonymous": 0, "files": 0}
    kind = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
            if head:
                size = int(head.group(2), 16) - int(head.group(1), 16)
                if head.group(4).startswith("/"):
                    kind = "files"
                elif "x" in head.group(3):
                    kind = "jit code"
                elif size == 256 * 1024:
                    kind = "v8 heap"
                else:
                    kind = "other anonymous"
            elif line.startswith("Referenced:"):
                pages[kind] += int(line.split()[1]) // 4
    return pages


def pages_per_request(node, workers, requests=50):
    """Pages touched per request, spread over `requests` workers or all to
    one, median of three tries."""
    base = f"http://127.0.0.1:{node.port}"
    loads = {
        "spread": [f"{base}/w{(i * 7) % workers}/" for i in range(requests)],
        "single": [f"{base}/w0/"] * requests,
    }
    for label, urls in loads.items():
        tries = []
        for _ in range(3):
            with open(f"/proc/{node.process.pid}/clear_refs", "w") as f:
                f.write("1")
            for url in urls:
                get(url)
            tries.append(referenced_pages(node.process.pid))
        kinds = {k: statistics.median(t[k] for t in tries) / requests for k in tries[0]}
        print(f"{node.label}: pages touched per request, {label}: "
              + ", ".join(f"{k} {v:.1f}" for k, v in kinds.items()))


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


class Node:
    """One `outpost edge --local` process serving the generated workers."""

    def __init__(self, label, binary, extra_args, root):
        self.label = label
        self.port = free_port()
        self.process = subprocess.Popen(
            [binary, "edge", "--local", root, "--port", str(self.port), "--log", "warn",
             *extra_args],
        )
        self.results = {"spread": [], "single": []}

    def load(self, seconds, conns, script):
        """Runs wrk; returns rps, CPU us/request (all, executors), p99 ms,
        errors and minor faults per request."""
        pid = self.process.pid
        before, faults_before = cpu_seconds(pid), minor_faults(pid)
        out = subprocess.run(
            ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", script,
             f"http://127.0.0.1:{self.port}/"],
            capture_output=True, text=True, check=True,
        ).stdout
        after, faults = cpu_seconds(pid), minor_faults(pid) - faults_before
        rps, total, p99, errors = parse_wrk(out)
        cpu_us = (after[0] - before[0]) / total * 1e6
        exec_us = (after[1] - before[1]) / total * 1e6
        return rps, cpu_us, exec_us, p99, errors, faults / total

    def answer_once(self, workers):
        """Has every worker answer once, so all are resident; prints RSS."""
        wait_ready(self.port)
        idle_rss = rss_mib(self.process.pid)
        started = time.time()
        for i in range(workers):
            body = get(f"http://127.0.0.1:{self.port}/w{i}/")
            if body != f"w{i}":
                sys.exit(f"{self.label}: w{i} answered {body!r}")
        print(f"{self.label}: {workers} workers each answered once in "
              f"{time.time() - started:.1f} s")
        time.sleep(2)
        full_rss = rss_mib(self.process.pid)
        per_worker = (full_rss - idle_rss) / max(workers - 1, 1)
        print(f"{self.label}: RSS with 1 worker resident: {idle_rss:.0f} MiB; with {workers}: "
              f"{full_rss:.0f} MiB; about {per_worker:.2f} MiB per resident worker")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


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
    ap.add_argument("--pages", action="store_true",
                    help="also count the memory pages a request touches (root only)")
    ap.add_argument("--compare", default=None,
                    help="a second binary, served and measured alongside")
    ap.add_argument("--compare-arg", action="append", default=[],
                    help="an extra argument for the second node (repeatable)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "workers")
        for i in range(args.workers):
            os.makedirs(os.path.join(root, f"w{i}"))
            with open(os.path.join(root, f"w{i}", "worker.js"), "w") as f:
                f.write(WORKER.format(name=f"w{i}"))
        scripts = {}
        for label, n in (("spread", args.workers), ("single", 1)):
            scripts[label] = os.path.join(tmp, f"{label}.lua")
            with open(scripts[label], "w") as f:
                f.write(ROUND_ROBIN_LUA.format(workers=n))

        nodes = [Node("A", args.binary, args.node_arg, root)]
        if args.compare or args.compare_arg:
            nodes.append(Node("B", args.compare or args.binary, args.compare_arg, root))
        try:
            for node in nodes:
                node.answer_once(args.workers)
            # Warm-up in slices, alternating nodes, so both see the same machine.
            remaining = args.warmup
            while remaining > 0:
                chunk = min(10, remaining)
                for node in nodes:
                    rps, cpu_us, exec_us, p99, errors, _ = node.load(
                        chunk, args.conns, scripts["spread"])
                    print(f"{node.label}: warm-up spread {chunk} s: rps={rps:.0f} "
                          f"cpu/req={cpu_us:.2f}us (executors {exec_us:.2f}) p99={p99:.2f}ms "
                          f"errors={errors}; RSS {rss_mib(node.process.pid):.0f} MiB")
                remaining -= chunk

            for r in range(args.rounds):
                order = nodes if r % 2 == 0 else nodes[::-1]
                for label in ("spread", "single"):
                    for node in order:
                        rps, cpu_us, exec_us, p99, errors, faults = node.load(
                            args.seconds, args.conns, scripts[label])
                        node.results[label].append((rps, cpu_us, exec_us, p99))
                        print(f"round {r + 1} {node.label} {label:<6} rps={rps:>9.0f} "
                              f"cpu/req={cpu_us:>7.2f}us executors={exec_us:>6.2f}us "
                              f"p99={p99:.2f}ms faults/req={faults:.2f} errors={errors}")

            print(f"\nworkers={args.workers} warmup={args.warmup} rounds={args.rounds} "
                  f"seconds={args.seconds} conns={args.conns}")
            for node in nodes:
                if len(nodes) > 1:
                    extra = args.node_arg if node.label == "A" else args.compare_arg
                    binary = args.binary if node.label == "A" else (args.compare or args.binary)
                    print(f"\nnode {node.label}: {binary} {' '.join(extra)}")
                print(f"{'load':<8}{'rps':>9}{'cpu_us/req':>12}{'executors':>11}{'other':>8}"
                      f"{'p99_ms':>9}")
                med = {}
                for label, runs in node.results.items():
                    med[label] = [statistics.median(x) for x in zip(*runs)]
                    rps, cpu_us, exec_us, p99 = med[label]
                    print(f"{label:<8}{rps:>9.0f}{cpu_us:>12.2f}{exec_us:>11.2f}"
                          f"{cpu_us - exec_us:>8.2f}{p99:>9.2f}")
                print(f"ratio spread/single: rps x{med['spread'][0] / med['single'][0]:.2f}, "
                      f"cpu/req x{med['spread'][1] / med['single'][1]:.2f} (lower is better)")
                print(f"RSS at the end of the load: {rss_mib(node.process.pid):.0f} MiB")
            if args.pages:
                for node in nodes:
                    pages_per_request(node, args.workers)
            time.sleep(10)
            for node in nodes:
                print(f"{node.label}: RSS 10 s later: {rss_mib(node.process.pid):.0f} MiB")
        finally:
            for node in nodes:
                node.stop()


if __name__ == "__main__":
    main()
