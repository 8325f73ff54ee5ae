#!/usr/bin/env python3
"""Edge protocol benchmarks, each pair measured side by side in alternation:

  1. HTTP/1.1 keep-alive, plain against HTTPS (wrk): requests/s and the
     edge's CPU time per request.
  2. HTTP/2 against HTTP/3, both over TLS, with the same client
     (`cargo run --release -p outpost-edge --example load`): requests/s,
     p50 and p99 latency, CPU per request.
  3. Pre-warming on the TLS handshake: the first request to a worker whose
     isolate has not started, on an edge that starts it when the
     ClientHello names its host and on one that does not
     (`--no-tls-prewarm`), on loopback and through a proxy that delays
     every chunk (`--delay-ms` each way), as a network would. Reports
     curl's time to the first byte and the part of it after the handshake.

Usage (after `cargo build --release -p outpost` and
`cargo build --release -p outpost-edge --example load`; needs wrk, curl and
openssl):
  scripts/bench_edge_tls.py [--rounds 3] [--seconds 5] [--workers 30]
"""
import argparse
import asyncio
import os
import re
import statistics
import subprocess
import tempfile
import threading

from benchlib import HZ, cpu_ticks, start, wrk

HELLO = 'export default { fetch() { return new Response("Hello from Outpost over TLS!"); } };\n'
# A top level with some work in it, as real workers have (a few ms).
HEAVY = """const table = JSON.parse(JSON.stringify(Array.from({ length: 20000 }, (_, i) => ({ i, s: `row ${i}` }))));
export default { fetch() { return new Response(`rows: ${table.length}`); } };
"""


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def make_certs(work, workers):
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", f"{work}/ca.key", "-out", f"{work}/ca.pem", "-days", "2", "-subj", "/CN=bench CA")
    sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", f"{work}/leaf.key", "-out", f"{work}/leaf.csr", "-subj", "/CN=localhost")
    with open(f"{work}/ext", "w") as f:
        # Clients take no wildcard right under a one-label name (*.localhost),
        # so each worker's host is named.
        names = ["localhost", "*.bench.test"] + [f"w{i}.localhost" for i in range(workers)]
        f.write("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n"
                "basicConstraints=CA:FALSE\n")
    sh("openssl", "x509", "-req", "-in", f"{work}/leaf.csr", "-CA", f"{work}/ca.pem", "-CAkey",
       f"{work}/ca.key", "-CAcreateserial", "-out", f"{work}/leaf.pem", "-days", "2", "-extfile",
       f"{work}/ext")


def start_edge(binary, folder, work, extra=()):
    process, lines = start(binary, ["edge", "--local", folder, "--port", "0", "--tls-port", "0",
                                    "--tls-cert", f"{work}/leaf.pem", "--tls-key",
                                    f"{work}/leaf.key", *extra], "at http://")
    line = lines[-1]
    http = re.search(r"http://([\d.:]+)/", line).group(1)
    https_port = int(re.search(r"https://[\d.]+:(\d+)/", line).group(1))
    return process, http, https_port


def measured(pid, run):
    before = cpu_ticks(pid)
    requests, figures = run()
    cpu_us = (cpu_ticks(pid) - before) / HZ * 1e6 / max(requests, 1)
    return {**figures, "cpu_us": cpu_us}


def rps_of(result):
    requests, rps = result
    return requests, {"rps": rps}


def load(tool, proto, port, work, seconds):
    out = sh(tool, "--proto", proto, "--addr", f"127.0.0.1:{port}", "--host", "hello.bench.test",
             "--path", "/hello/", "--ca", f"{work}/ca.pem", "--conns", "4", "--streams", "8",
             "--seconds", str(seconds))
    fields = dict(kv.split("=") for kv in out.split()[1:])
    return int(fields["requests"]), {"rps": float(fields["rps"]), "p50_us": int(fields["p50_us"]),
                                     "p99_us": int(fields["p99_us"])}


def first_request(port, host, work):
    out = sh("curl", "-s", "-o", "/dev/null", "--cacert", f"{work}/ca.pem", "--resolve",
             f"{host}:{port}:127.0.0.1", "-w", "%{time_appconnect} %{time_starttransfer}",
             f"https://{host}:{port}/")
    appconnect, ttfb = (float(x) * 1000 for x in out.split())
    return ttfb, ttfb - appconnect


def delaying_proxy(target_port, delay_s):
    """A TCP proxy on a free port that holds every chunk `delay_s` in each
    direction, as a network with a round trip of twice that would; returns
    its port."""
    ready = threading.Event()
    port = []

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                await asyncio.sleep(delay_s)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def handle(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer),
                             return_exceptions=True)

    async def serve():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        await server.serve_forever()

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()
    ready.wait()
    return port[0]


def medians(rows):
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="target/release/outpost")
    ap.add_argument("--load", default="target/release/examples/load")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--workers", type=int, default=40)
    ap.add_argument("--delay-ms", type=int, default=10)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="outpost-tls-bench-")
    make_certs(work, args.workers)
    folder = f"{work}/workers"
    os.makedirs(f"{folder}/hello")
    with open(f"{folder}/hello/worker.js", "w") as f:
        f.write(HELLO)
    for i in range(args.workers):
        os.makedirs(f"{folder}/w{i}")
        with open(f"{folder}/w{i}/worker.js", "w") as f:
            f.write(HEAVY)
    processes = []
    try:
        edge, http, https_port = start_edge(args.binary, folder, work)
        processes.append(edge)
        cold, _, cold_port = start_edge(args.binary, folder, work, ["--no-tls-prewarm"])
        processes.append(cold)

        rows = {"http": [], "https": []}
        for _ in range(args.rounds):
            for name, url in [("http", f"http://{http}/hello/"),
                              ("https", f"https://localhost:{https_port}/hello/")]:
                wrk(url, 1, args.conns)
                rows[name].append(measured(edge.pid, lambda: rps_of(wrk(url, args.seconds, args.conns))))
        plain, tls = medians(rows["http"]), medians(rows["https"])
        print(f"HTTP/1.1 keep-alive, wrk -c{args.conns}, {args.rounds} rounds of {args.seconds} s:")
        for name, m in [("plain", plain), ("https", tls)]:
            print(f"  {name:6} {m['rps']:9.0f} req/s  {m['cpu_us']:6.1f} us CPU/request")
        print(f"  https/plain: rps x{tls['rps'] / plain['rps']:.2f}, "
              f"CPU/request x{tls['cpu_us'] / plain['cpu_us']:.2f}")

        rows = {"h2": [], "h3": []}
        for _ in range(args.rounds):
            for proto in rows:
                load(args.load, proto, https_port, work, 1)
                rows[proto].append(measured(
                    edge.pid, lambda: load(args.load, proto, https_port, work, args.seconds)))
        h2, h3 = medians(rows["h2"]), medians(rows["h3"])
        print(f"HTTP/2 against HTTP/3 over TLS, 4 connections x 8 streams, {args.rounds} rounds:")
        for name, m in [("h2", h2), ("h3", h3)]:
            print(f"  {name:6} {m['rps']:9.0f} req/s  p50 {m['p50_us']:6.0f} us  "
                  f"p99 {m['p99_us']:6.0f} us  {m['cpu_us']:6.1f} us CPU/request")
        print(f"  h3/h2: rps x{h3['rps'] / h2['rps']:.2f}, p50 x{h3['p50_us'] / h2['p50_us']:.2f}, "
              f"CPU/request x{h3['cpu_us'] / h2['cpu_us']:.2f}")

        # Half the workers on loopback, half through a proxy that adds a
        # round trip of 2 x delay, as a client across a network would see.
        half = args.workers // 2
        for label, first, delay in [("loopback", 0, 0), (f"{2 * args.delay_ms} ms RTT", half,
                                                         args.delay_ms / 1000)]:
            warm_port, cold_port_ = https_port, cold_port
            if delay:
                warm_port = delaying_proxy(https_port, delay)
                cold_port_ = delaying_proxy(cold_port, delay)
            warm, unwarmed = [], []
            for i in range(first, first + half):
                host = f"w{i}.localhost"
                warm.append(first_request(warm_port, host, work))
                unwarmed.append(first_request(cold_port_, host, work))
            print(f"First request to a cold worker over HTTPS, {label}, {half} workers each "
                  "(curl: to first byte / after the handshake):")
            for name, rows_ in [("pre-warmed", warm), ("not", unwarmed)]:
                ttfb = statistics.median(r[0] for r in rows_)
                after = statistics.median(r[1] for r in rows_)
                print(f"  {name:10} median {ttfb:7.2f} ms / {after:7.2f} ms")
            saved = statistics.median(r[0] for r in unwarmed) - statistics.median(r[0] for r in warm)
            print(f"  pre-warming on the handshake saved {saved:.2f} ms of the first byte")
    finally:
        for process in processes:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
