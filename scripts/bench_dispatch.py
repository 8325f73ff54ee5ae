#!/usr/bin/env python3
"""A dispatcher in front of the user workers of one dispatch namespace,
routing by subdomain, against the same workers served directly: issue
19's acceptance (1,000 user workers on one edge, the dispatcher hop under
1.3 times the edge CPU per request of calling the user worker directly);
docs/benchmarks.md.

    scripts/bench_dispatch.py [--workers 1000] [--rounds 3] [--seconds 10]
                              [--connections 32] [--warmup 90] [--threads N]
                              [--binary target/release/outpost]

It starts `outpost control` and one `outpost edge`, creates namespace
`customers`, and uploads N workers (each answers its own name) twice:
into the namespace as w0..wN-1, and as public workers of the same names.
The dispatcher (route `*.customers.test/*`) answers each request with
`env.DISPATCHER.get(subdomain, {}, { limits: { cpuMs: 10 } }).fetch(request)`.
A user worker that spins past 10 ms shows the limit holding. A warm-up
of round-robin load on each path comes first: each of the 2N isolates
tiers its request path up only after some hundreds of requests, and
until then both figures fall round after round. Then wrk sends requests
round-robin over all N, alternating round by round:

  direct      Host w<i>.localhost: the public copy of user worker i
  dispatched  Host w<i>.customers.test: the dispatcher, then user worker i

and prints the median edge CPU per request (user+sys of the whole
process) of each, their ratio, and the median of the rounds' ratios.
Needs wrk.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import HZ, call, cpu_ticks, start_cluster  # noqa: E402

USER = 'export default {{ fetch() {{ return new Response("{name}"); }} }};\n'
SPIN = ('export default { fetch() { const end = Date.now() + 200; while (Date.now() < end); '
        'return new Response("spun"); } };\n')
DISPATCHER = """export default {
  async fetch(request, env) {
    const name = new URL(request.url).hostname.split(".")[0];
    try {
      return await env.DISPATCHER.get(name, {}, { limits: { cpuMs: 10 } }).fetch(request);
    } catch (e) {
      const status = e.message.startsWith("Worker not found") ? 404 : 500;
      return new Response(e.message, { status });
    }
  },
};
"""

ROUND_ROBIN_LUA = """
local n = {workers}
local i = 0
request = function()
  i = i + 1
  wrk.headers["Host"] = "w" .. (i % n) .. "{suffix}"
  return wrk.format("GET", "/")
end
"""


def upload(api, token, path, source, extra=None):
    bundle = {"main": "worker.js", "modules": {"worker.js": source}, **(extra or {})}
    call(api, token, "POST", f"{path}/versions", bundle)
    return call(api, token, "POST", f"{path}/deployments", {"version": 1})["deployment"]["epoch"]


def get(url, host):
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def wait_served(url, host, want):
    deadline = time.time() + 120
    while time.time() < deadline:
        status, body = get(url, host)
        if status == 200 and body == want:
            return
        time.sleep(0.2)
    sys.exit(f"{host} is not served: {status} {body}")


def wrk_spread(url, workers, suffix, seconds, connections, work):
    script = f"{work}/spread{suffix}.lua"
    with open(script, "w") as f:
        f.write(ROUND_ROBIN_LUA.format(workers=workers, suffix=suffix))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    requests = int(out.split(" requests in")[0].split()[-1])
    errors = "Non-2xx" in out or "Socket errors" in out
    return requests, errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=90)
    parser.add_argument("--threads", type=int,
                        help="the edge's executor threads (default: one per core)")
    parser.add_argument("--binary", default="target/release/outpost")
    args = parser.parse_args()
    edge_args = ["--threads", str(args.threads)] if args.threads else []
    processes = []
    with tempfile.TemporaryDirectory() as work:
        try:
            api, token, (edge_url,) = start_cluster(args.binary, work, 1, processes, edge_args)
            edge = processes[-1]
            call(api, token, "POST", "/dispatch-namespaces", {"name": "customers"})
            started = time.time()
            for i in range(args.workers):
                source = USER.format(name=f"w{i}")
                upload(api, token, f"/dispatch-namespaces/customers/workers/w{i}", source)
                upload(api, token, f"/workers/w{i}", source)
            upload(api, token, "/dispatch-namespaces/customers/workers/spin", SPIN)
            upload(api, token, "/workers/dispatcher", DISPATCHER,
                   {"dispatch_namespaces": [{"binding": "DISPATCHER", "namespace": "customers"}]})
            call(api, token, "PUT", "/routes",
                 {"pattern": "*.customers.test/*", "worker": "dispatcher"})
            last = f"w{args.workers - 1}"
            wait_served(f"{edge_url}/", f"{last}.customers.test", last)
            wait_served(f"{edge_url}/", f"{last}.localhost", last)
            print(f"{args.workers} user workers and their {args.workers} public copies "
                  f"deployed and served in {time.time() - started:.0f} s")
            status, body = get(f"{edge_url}/", "spin.customers.test")
            print(f"a user worker spinning 200 ms under cpuMs 10: {status} {body!r}")
            status, body = get(f"{edge_url}/", "nobody.customers.test")
            print(f"a name the namespace lacks: {status} {body!r}")

            for suffix in (".localhost", ".customers.test"):
                wrk_spread(f"{edge_url}/", args.workers, suffix, args.warmup, args.connections,
                           work)
            per = {".localhost": [], ".customers.test": []}
            for _ in range(args.rounds):
                for suffix in per:
                    before = cpu_ticks(edge.pid)
                    requests, errors = wrk_spread(f"{edge_url}/", args.workers, suffix,
                                                  args.seconds, args.connections, work)
                    if errors:
                        print(f"  (errors in a {suffix} round)")
                    per[suffix].append((cpu_ticks(edge.pid) - before) / HZ / requests * 1e6)
            direct = statistics.median(per[".localhost"])
            hop = statistics.median(per[".customers.test"])
            # Each round's pair ran back to back: the median of their ratios
            # is the steadiest figure on a shared machine.
            paired = statistics.median(
                h / d for d, h in zip(per[".localhost"], per[".customers.test"]))
            print(f"edge CPU per request over {args.workers} workers round-robin, "
                  f"median of {args.rounds} rounds of {args.seconds} s:")
            print(f"  user workers directly:   {direct:.1f} us  "
                  f"({', '.join(f'{x:.1f}' for x in per['.localhost'])})")
            print(f"  through the dispatcher:  {hop:.1f} us  "
                  f"({', '.join(f'{x:.1f}' for x in per['.customers.test'])})")
            print(f"  ratio: {hop / direct:.2f}x (median of the rounds' ratios: {paired:.2f}x)")
            print(json.dumps({"direct_us": direct, "dispatched_us": hop,
                              "ratio": hop / direct, "paired_ratio": paired}))
        finally:
            for process in processes:
                process.kill()
                process.wait()


if __name__ == "__main__":
    main()
