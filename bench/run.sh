#!/usr/bin/env bash
# Gyre's HTTP benchmark. Measures, on this machine, over loopback:
#   1. requests/s and latency for raw hyper, the tiny WAT guest and the
#      Python SDK 5 guest, with the same load generator (wrk);
#   2. time from `gyre up` to the first 200, cold (empty compile cache) and
#      warm, for the tiny and the Python guest.
# Numbers go to stdout as a Markdown table. Needs wrk (apt) and the guests
# (tests/apps/build.sh). Runs bounded: each load run lasts DURATION seconds.
#
#   bench/run.sh                 # defaults: 10 s per run, 32 connections
#   DURATION=5 CONNECTIONS=64 bench/run.sh
#   BASELINE=/path/to/older/gyre bench/run.sh   # also the tiny guest on that binary
#
# The tiny guest also runs with --metrics-listen and a scrape every second
# (metrics are recorded in every run; this adds serving them).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
tests/apps/build.sh hello-wat py5-http py4-http py5-state compose-primary compose-greeter >&2
cargo build --release -p gyre -p gyre-bench-raw-hyper >&2
GYRE=target/release/gyre
RAW=target/release/gyre-bench-raw-hyper
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

source bench/lib.sh

echo "## Throughput ($(nproc) cores, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, loopback)"
echo
echo "| server | requests/s | p50 | p99 | server CPU per request |"
echo "|---|---|---|---|---|"
"$RAW" 127.0.0.1:0 > "$WORK/raw.log" & RAWPID=$!
load raw-hyper "$(wait_serving "$WORK/raw.log")/" $RAWPID
kill $RAWPID; wait $RAWPID 2>/dev/null || true

CACHE="$WORK/cache"
# python-rc: the same app built by Python SDK 4, whose handler is the WASI
# 0.3 release candidate (mapped onto 0.3.0 at load).
for pair in "tiny:hello-wat:/" "python:py5-http:/hello" "python-rc:py4-http:/hello"; do
  IFS=: read -r name guest path <<<"$pair"
  dir="$(app "$name" "$guest")"
  GYRE_CACHE_DIR="$CACHE" "$GYRE" up -f "$dir" --listen 127.0.0.1:0 -q > "$WORK/$name.log" 2>"$WORK/$name.err" & PID=$!
  load "gyre-$name" "$(wait_serving "$WORK/$name.log")$path" $PID
  kill -TERM $PID; wait $PID 2>/dev/null || true
done

# The tiny guest with its metrics served and scraped every second.
dir="$(app tiny-metrics hello-wat)"
GYRE_CACHE_DIR="$CACHE" "$GYRE" up -f "$dir" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 -q > "$WORK/tm.log" 2>"$WORK/tm.err" & PID=$!
base="$(wait_serving "$WORK/tm.log")"
metrics="$(grep -m1 '^Metrics: ' "$WORK/tm.log" | cut -d' ' -f2)"
( while sleep 1; do curl -sf "$metrics" >/dev/null || true; done ) & SCRAPER=$!
load "gyre-tiny-metrics-scraped" "$base/" $PID
kill $SCRAPER 2>/dev/null || true
kill -TERM $PID; wait $PID 2>/dev/null || true

if [[ -n "${BASELINE:-}" ]]; then
  dir="$(app tiny-baseline hello-wat)"
  GYRE_CACHE_DIR="$WORK/baseline-cache" "$BASELINE" up -f "$dir" --listen 127.0.0.1:0 -q > "$WORK/tb.log" 2>"$WORK/tb.err" & PID=$!
  load "baseline-tiny" "$(wait_serving "$WORK/tb.log")/" $PID
  kill -TERM $PID; wait $PID 2>/dev/null || true
fi

echo
echo "## Key-value on the default store (Python SDK 5, spin:key-value@3.0.0)"
echo
echo "| route | requests/s | p50 | p99 | server CPU per request |"
echo "|---|---|---|---|---|"
kv="$(app kv py5-state 'key_value_stores = ["default"]')"
GYRE_CACHE_DIR="$CACHE" "$GYRE" up -f "$kv" --listen 127.0.0.1:0 -q --key-value bench=value > "$WORK/kv.log" 2>"$WORK/kv.err" & PID=$!
base="$(wait_serving "$WORK/kv.log")"
load "hello" "$base/hello" $PID
load "kv-get" "$base/kv/get/bench" $PID
load "kv-set" "$base/kv/set/bench-set" $PID
kill -TERM $PID; wait $PID 2>/dev/null || true

raw="$(cat "$WORK/rps-raw-hyper")"; tiny="$(cat "$WORK/rps-gyre-tiny")"
echo
awk -v r="$raw" -v t="$tiny" 'BEGIN { printf "tiny guest / raw hyper: %.0f%%\n", 100 * t / r }'

first_200() { # first_200 DIR PATH CACHE -> milliseconds from start to the first 200
  python3 bench/first_200.py "$GYRE" "$1" "$2" "$3"
}

composed_app() { # composed_app NAME -> the composition test's primary with its greeter dependency
  mkdir -p "$WORK/$1"
  cat > "$WORK/$1/spin.toml" <<TOML
spin_manifest_version = 2
[application]
name = "$1"
[[trigger.http]]
route = "/..."
component = "primary"
[component.primary]
source = "$PWD/target/guests/compose-primary.wasm"
[component.primary.dependencies]
"gyre:compose-test/greeting" = { path = "$PWD/target/guests/compose-greeter.wasm" }
TOML
  echo "$WORK/$1"
}

echo
echo "## Start to first 200 (median of 5)"
echo
echo "| guest | cold cache (ms) | warm cache (ms) |"
echo "|---|---|---|"
# primary: the composition test's Python primary alone (its dependency's
# import stubbed); composed: the same with its dependency composed in.
for pair in "tiny:hello-wat:/" "python:py5-http:/hello" "primary:compose-primary:/headers" "composed::/headers"; do
  IFS=: read -r name guest path <<<"$pair"
  if [[ -n "$guest" ]]; then dir="$(app "$name-start" "$guest")"; else dir="$(composed_app "$name-start")"; fi
  cold=(); warm=()
  for i in 1 2 3 4 5; do
    rm -rf "$WORK/start-cache"
    cold+=("$(first_200 "$dir" "$path" "$WORK/start-cache")")
    warm+=("$(first_200 "$dir" "$path" "$WORK/start-cache")")
  done
  median() { printf '%s\n' "$@" | sort -n | sed -n 3p; }
  printf '| %s | %s | %s |\n' "$name" "$(median "${cold[@]}")" "$(median "${warm[@]}")"
done
