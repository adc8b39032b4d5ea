#!/usr/bin/env python3
"""Time from starting `gyre up` to its first 200 response, in milliseconds.

    first_200.py GYRE APP PATH CACHE_DIR [UP_ARGS...]

Starts `GYRE up -f APP --listen 127.0.0.1:0 UP_ARGS` with GYRE_CACHE_DIR=CACHE_DIR
(APP: a directory, a manifest or a registry reference),
reads the port from the `Serving` line, polls PATH until it answers 200, prints
the elapsed milliseconds and stops the server. Used by bench/run.sh and bench/distribution.sh.
"""
import http.client
import os
import subprocess
import sys
import time

gyre, app, path, cache = sys.argv[1:5]
extra = sys.argv[5:]
env = dict(os.environ, GYRE_CACHE_DIR=cache)
start = time.perf_counter()
proc = subprocess.Popen([gyre, "up", "-f", app, "--listen", "127.0.0.1:0", "-q", *extra],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
try:
    port = None
    for line in proc.stdout:
        if line.startswith("Serving http://"):
            port = int(line.strip().rsplit(":", 1)[1])
            break
    if port is None:
        sys.exit("gyre exited before serving")
    deadline = start + 120
    while time.perf_counter() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.0005)
    print(round((time.perf_counter() - start) * 1000))
finally:
    proc.terminate()
    proc.wait()
