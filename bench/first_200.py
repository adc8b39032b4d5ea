#!/usr/bin/env python3
"""Time from starting a server to its first 200 response, in milliseconds.

    first_200.py GYRE APP PATH CACHE_DIR [UP_ARGS...]
    first_200.py --port PORT PATH COMMAND...

The first form starts `GYRE up -f APP --listen 127.0.0.1:0 UP_ARGS` with
GYRE_CACHE_DIR=CACHE_DIR (APP: a directory, a manifest or a registry
reference) and reads the port from its `Serving` line. The second starts any
COMMAND (a peer in bench/compare.sh) that listens on PORT. Either way PATH is
polled until it answers 200; the elapsed milliseconds are printed and the
server is stopped (its whole process group: `spin up` runs a child).
Used by bench/run.sh, bench/distribution.sh and bench/compare.sh.
"""
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time

TIMEOUT_S = 300


def gyre_server(gyre, app, cache, extra):
    env = dict(os.environ, GYRE_CACHE_DIR=cache)
    proc = subprocess.Popen([gyre, "up", "-f", app, "--listen", "127.0.0.1:0", "-q", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                            text=True, start_new_session=True)
    for line in proc.stdout:
        if line.startswith("Serving http://"):
            return proc, int(line.strip().rsplit(":", 1)[1])
    stop(proc)
    sys.exit("gyre exited before serving")


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait()


def until_200(proc, port, path, start, errors):
    while time.perf_counter() < start + TIMEOUT_S:
        if proc.poll() is not None:
            errors.seek(0)
            first = next((l.strip() for l in errors.read().decode(errors="replace").splitlines()
                          if l.strip()), "")
            sys.exit(f"the server exited with {proc.returncode} before answering: {first}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return round((time.perf_counter() - start) * 1000)
        except OSError:
            time.sleep(0.0005)
    sys.exit(f"no 200 from {path} within {TIMEOUT_S} s")


errors = tempfile.TemporaryFile()
start = time.perf_counter()
if sys.argv[1] == "--port":
    port, path, command = int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors,
                            start_new_session=True)
else:
    gyre, app, path, cache = sys.argv[1:5]
    proc, port = gyre_server(gyre, app, cache, sys.argv[5:])
try:
    print(until_200(proc, port, path, start, errors))
finally:
    stop(proc)
