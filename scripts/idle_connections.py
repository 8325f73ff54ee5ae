#!/usr/bin/env python3
"""Holds many idle HTTP/1.1 keep-alive connections to one edge and measures
what they cost: the edge's resident memory before and with them open,
per connection, and whether a fresh client is still served quickly while
they are held (docs/reliability.md).

    scripts/idle_connections.py [--connections 10000] [--binary target/release/outpost]

Each connection makes one request, reads the answer and then sits idle.
The edge is started with caps and a header-read timeout large enough to
keep them all; a sample is reused at the end to show they still work.
"""
import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import start  # noqa: E402

REQUEST = b"GET /hello/ HTTP/1.1\r\nhost: bench.test\r\n\r\n"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def one_request(reader, writer):
    """Sends REQUEST on the connection and reads one whole answer."""
    writer.write(REQUEST)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    await reader.readexactly(length)
    return head.split(b" ")[1]


async def open_all(port, count, quiet=False):
    """Opens `count` connections, each after one answered request."""
    connections = []
    started = time.monotonic()
    for batch in range(0, count, 500):
        opened = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port)
                                        for _ in range(min(500, count - batch))))
        statuses = await asyncio.gather(*(one_request(r, w) for r, w in opened))
        assert all(s == b"200" for s in statuses), statuses[:5]
        connections.extend(opened)
        if not quiet:
            print(f"  {len(connections)} connections open ({time.monotonic() - started:.1f} s)",
                  flush=True)
    return connections


def fresh_request_ms(port):
    started = time.monotonic()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/hello/",
                                     headers={"Host": "bench.test"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return (time.monotonic() - started) * 1000


def open_gauge(metrics):
    with urllib.request.urlopen(metrics, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("outpost_connections_open "):
                return int(float(line.split()[1]))
    return -1


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--binary", default="target/release/outpost")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times the connections are opened and closed again")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < args.connections + 100:
        sys.exit(f"the file limit ({hard}) is too low for {args.connections} connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    with tempfile.TemporaryDirectory() as work:
        os.makedirs(f"{work}/workers/hello")
        with open(f"{work}/workers/hello/worker.js", "w") as f:
            f.write("export default { fetch() { return new Response('hello'); } };")
        limit = str(args.connections + 100)
        edge, lines = start(args.binary, [
            "edge", "--local", f"{work}/workers", "--port", "0", "--admin-port", "0",
            "--threads", "1", "--max-connections", limit, "--max-connections-per-ip", limit,
            "--header-read-timeout-secs", "3600", "--log", "warn"], "at http://")
        try:
            port = int(next(w for w in lines[-1].split() if w.startswith("http://"))
                       .rstrip("/").rsplit(":", 1)[1])
            metrics = next(line.split()[-1] for line in lines if "metrics on" in line)
            for _ in range(20):
                fresh_request_ms(port)
            idle_ms = sorted(fresh_request_ms(port) for _ in range(50))[25]
            before = rss_kib(edge.pid)
            print(f"edge RSS before: {before / 1024:.1f} MiB; a fresh request: {idle_ms:.2f} ms")
            connections = await open_all(port, args.connections)
            await asyncio.sleep(2)
            held = rss_kib(edge.pid)
            gauge = open_gauge(metrics)
            loaded_ms = sorted(fresh_request_ms(port) for _ in range(50))[25]
            sample = connections[:: max(1, len(connections) // 100)]
            statuses = await asyncio.gather(*(one_request(r, w) for r, w in sample))
            per = (held - before) / len(connections)
            print(f"edge RSS with {len(connections)} idle connections: {held / 1024:.1f} MiB "
                  f"(+{(held - before) / 1024:.1f} MiB, {per:.1f} KiB per connection); "
                  f"outpost_connections_open {gauge}")
            print(f"a fresh request while they are held: {loaded_ms:.2f} ms (median of 50; "
                  f"{idle_ms:.2f} ms before)")
            print(f"{sum(s == b'200' for s in statuses)} of {len(sample)} sampled idle "
                  "connections answered a second request")
            for _, writer in connections:
                writer.close()
            await asyncio.sleep(2)
            print(f"edge RSS after they closed: {rss_kib(edge.pid) / 1024:.1f} MiB; "
                  f"outpost_connections_open {open_gauge(metrics)}")
            # The allocator keeps what it freed; more rounds show whether it
            # is reused or leaked.
            for round in range(2, args.rounds + 1):
                connections = await open_all(port, args.connections, quiet=True)
                await asyncio.sleep(2)
                print(f"round {round}: edge RSS with {len(connections)} idle connections: "
                      f"{rss_kib(edge.pid) / 1024:.1f} MiB", flush=True)
                for _, writer in connections:
                    writer.close()
                await asyncio.sleep(2)
        finally:
            edge.kill()
            edge.wait()


if __name__ == "__main__":
    asyncio.run(main())
