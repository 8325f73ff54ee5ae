"""What the cluster benchmarks share: starting `outpost` processes and
calling the control plane's API."""
import json
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
