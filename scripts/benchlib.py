"""What the cluster benchmarks share: starting `outpost` processes and
calling the control plane's API."""
import json
import os
import re
import subprocess
import sys
import urllib.request


def call(api, token, method, path, body=None, raw=None):
    """Calls `method {api}{path}` with a JSON `body` (or `raw` bytes) and
    returns the JSON answer."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(f"{api}{path}", data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def start(binary, args, ready):
    """Starts `binary args` and reads its stdout up to the line containing
    `ready`; returns the process and the lines read."""
    process = subprocess.Popen([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if ready in line:
            return process, lines
    sys.exit(f"outpost {' '.join(args)} ended before it was ready: {lines}")


def start_cluster(binary, data, edges, processes, edge_args=()):
    """Starts `outpost control` (SQLite in `data`/control) and `edges`
    `outpost edge --control` nodes (with `edge_args` more), appending each
    process to `processes`; returns the API's URL, the admin token and the
    edges' URLs."""
    control, lines = start(binary, ["control", "--data", f"{data}/control", "--listen",
                                    "127.0.0.1:0", "--sync-listen", "127.0.0.1:0", "--log", "warn"],
                           "API at")
    processes.append(control)
    token = next(line for line in lines if line.startswith("opt_"))
    api = next(w for w in lines[-1].split() if w.startswith("http://"))
    urls = []
    for n in range(edges):
        join = subprocess.run([binary, "control", "token", "create", "--scope", "edge-join",
                               "--data", f"{data}/control"],
                              capture_output=True, text=True, check=True).stdout.strip()
        edge, lines = start(binary, ["edge", "--control", api, "--join", join, "--data",
                                     f"{data}/edge{n}", "--port", "0", "--log", "warn",
                                     *edge_args], "at http://")
        processes.append(edge)
        urls.append(next(w for w in lines[-1].split() if w.startswith("http://")).rstrip("/"))
    return api, token, urls


HZ = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    """User plus system CPU ticks of process `pid`, all threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wrk(url, seconds, conns, host=None):
    """Runs wrk against `url` (with Host `host`); returns the requests made
    and requests/s."""
    args = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s"]
    if host:
        args += ["-H", f"Host: {host}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return requests, float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def start_local_edge(binary, work, workers):
    """Writes `workers` (name, source, outpost.toml text) as folders under
    `work` and starts `outpost edge --local` on them with one executor
    thread; returns the process and its base URL."""
    for name, source, config in workers:
        os.makedirs(f"{work}/{name}")
        with open(f"{work}/{name}/worker.js", "w") as f:
            f.write(source)
        with open(f"{work}/{name}/outpost.toml", "w") as f:
            f.write(config)
    edge, lines = start(binary, ["edge", "--local", work, "--port", "0", "--threads", "1",
                                 "--log", "warn"], "at http://")
    base = next(w for w in lines[-1].split() if w.startswith("http://")).rstrip("/")
    return edge, base
