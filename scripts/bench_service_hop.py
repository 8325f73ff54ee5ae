#!/usr/bin/env python3
"""A worker in front of another through a service binding against the
other served directly: `dispatcher` answers every request with
`env.USER.fetch(request)`, `user` answers "hello"; wrk drives each in
turn on one edge, and the edge's CPU per request (every thread) is compared
side by side in one run. This is the hop a dispatch namespace's dispatcher
adds (issue 19's target: under 1.3 times); docs/benchmarks.md.

    scripts/bench_service_hop.py [--rounds 3] [--seconds 5] [--binary target/release/outpost]
"""
import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import HZ, cpu_ticks, start_local_edge, wrk  # noqa: E402

USER = 'export default { fetch() { return new Response("hello"); } };\n'
DISPATCHER = 'export default { fetch(request, env) { return env.USER.fetch(request); } };\n'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--binary", default="target/release/outpost")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        edge, base = start_local_edge(args.binary, work, [
            ("user", USER, ""),
            ("dispatcher", DISPATCHER,
             '[[services]]\nbinding = "USER"\nservice = "user"\n'),
        ])
        try:
            per = {"user": [], "dispatcher": []}
            for name in per:
                wrk(f"{base}/{name}/", 1, args.connections)  # warm up
            for _ in range(args.rounds):
                for name in per:
                    before = cpu_ticks(edge.pid)
                    requests, _ = wrk(f"{base}/{name}/", args.seconds, args.connections)
                    per[name].append((cpu_ticks(edge.pid) - before) / HZ / requests * 1e6)
            direct = statistics.median(per["user"])
            hop = statistics.median(per["dispatcher"])
            print(f"edge CPU per request, median of {args.rounds} rounds of {args.seconds} s:")
            print(f"  user directly:           {direct:.1f} us")
            print(f"  through the dispatcher:  {hop:.1f} us")
            print(f"  ratio: {hop / direct:.2f}x")
        finally:
            edge.kill()
            edge.wait()


if __name__ == "__main__":
    main()
