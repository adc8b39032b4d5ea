#!/usr/bin/env python3
"""Runs one attack against a Gyre server for a fixed time (bench/hostile.sh).

    attack.py MODE BASE_URL SECONDS [UPSTREAM_URL]

MODE is a hostile-guest route (loop, alloc, stdout, fanout, headers, sleep),
run by two attacker threads back to back, or a hostile client: slowloris
(500 connections trickling a request head), bigheaders (100 KiB headers),
garbage (malformed requests). Prints one line: attacks made and the
statuses they got.
"""

import collections
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

mode, base, seconds = sys.argv[1], sys.argv[2].rstrip("/"), float(sys.argv[3])
upstream = sys.argv[4] if len(sys.argv) > 4 else ""
host, port = base.split("//", 1)[1].split(":")
port = int(port)
deadline = time.time() + seconds
tally = collections.Counter()
lock = threading.Lock()

PATHS = {
    "loop": "/loop",
    "alloc": "/alloc",
    "stdout": "/stdout?mib=1024",
    "fanout": f"/fanout?n=2000&url={upstream}",
    "headers": "/headers?n=100000",
    "sleep": "/sleep?s=3600",
}


def record(key):
    with lock:
        tally[key] += 1


def guest_attacker():
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(base + PATHS[mode], timeout=120) as r:
                r.read()
                record(r.status)
        except urllib.error.HTTPError as e:
            record(e.code)
        except Exception as e:  # noqa: BLE001 - any failure is a data point
            record(type(e).__name__)


def raw(payload):
    s = socket.create_connection((host, port), timeout=10)
    try:
        s.sendall(payload)
        data = s.recv(64)
        record(data.split(b"\r\n", 1)[0].decode(errors="replace") or "closed")
    except OSError as e:
        record(type(e).__name__)
    finally:
        s.close()


def client_attacker(payload):
    while time.time() < deadline:
        raw(payload)


def slowloris():
    conns = []
    while time.time() < deadline:
        while len(conns) < 500:
            try:
                s = socket.create_connection((host, port), timeout=5)
                s.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n")
                conns.append(s)
                record("opened")
            except OSError as e:
                record(type(e).__name__)
                break
        alive = []
        for s in conns:
            try:
                s.sendall(b"x")
                alive.append(s)
            except OSError:
                record("closed by server")
                s.close()
        conns = alive
        time.sleep(0.2)
    for s in conns:
        s.close()


if mode in PATHS:
    threads = [threading.Thread(target=guest_attacker) for _ in range(2)]
elif mode == "slowloris":
    threads = [threading.Thread(target=slowloris)]
elif mode == "bigheaders":
    payload = b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * (100 << 10) + b"\r\n\r\n"
    threads = [threading.Thread(target=client_attacker, args=(payload,)) for _ in range(2)]
elif mode == "garbage":
    threads = [threading.Thread(target=client_attacker, args=(b"\x00\x9f\x92GARBAGE\r\n\r\n",)) for _ in range(2)]
else:
    sys.exit(f"unknown attack {mode}")
for t in threads:
    t.start()
for t in threads:
    t.join()
print(" ".join(f"{k}×{v}" for k, v in sorted(tally.items(), key=lambda kv: -kv[1])))
