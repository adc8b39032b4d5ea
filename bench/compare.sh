#!/usr/bin/env bash
# Gyre beside its peers, in one run on this machine: raw hyper (the floor:
# the same response bytes with no Wasm at all), Gyre, and — when their
# binaries are given — `wasmtime serve` and `spin up`, each on the same
# workloads with the same load generator. Prints one Markdown table:
# requests/s, p50, p99, server CPU per request (from /proc, the whole process
# tree), each ratio to raw hyper's, resident memory idle and after the load,
# and start to first 200 with a cold and a warm compile cache (median of 3).
#
#   bench/compare.sh
#   WASMTIME=~/.cargo/bin/wasmtime SPIN=/path/to/spin bench/compare.sh
#   DURATION=5 CONNECTIONS=32 bench/compare.sh
#
# Getting the peers:
#   wasmtime serve:  cargo install wasmtime-cli --version 48.0.8 --locked   (~20 min here)
#   spin up:         build Spin from source (cargo build --release in a Spin checkout, about an
#                    hour on two cores), or use a release binary where one can be downloaded.
#
# Workloads: `tiny` is the WAT hello (wasi:http 0.2, a fresh instance per
# request everywhere); `python` is the Python SDK 5 hello (wasi:http 0.3).
# A peer that cannot run a workload gets a row saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
STARTS="${STARTS:-3}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
tests/apps/build.sh hello-wat py5-http >&2
cargo build --release -p gyre -p gyre-bench-raw-hyper >&2
GYRE="$PWD/target/release/gyre"
RAW="$PWD/target/release/gyre-bench-raw-hyper"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
source bench/lib.sh

# peer_command PEER WORKLOAD PORT CACHE -> the command line serving WORKLOAD
# on PORT with its compile cache in CACHE, or nothing if PEER cannot run it.
peer_command() {
  local peer=$1 workload=$2 port=$3 cache=$4 guest
  case $workload in tiny) guest=hello-wat ;; python) guest=py5-http ;; esac
  local wasm="$PWD/target/guests/$guest.wasm"
  case $peer in
    raw-hyper) if [[ $workload == tiny ]]; then echo "$RAW 127.0.0.1:$port"; fi ;;
    gyre) echo "env GYRE_CACHE_DIR=$cache $GYRE up -f $(app "app-$workload" "$guest") --listen 127.0.0.1:$port -q" ;;
    wasmtime)
      mkdir -p "$cache"
      printf '[cache]\ndirectory = "%s"\n' "$cache/wasmtime" > "$cache/config.toml"
      local flags=""
      [[ $workload == python ]] && flags="-Wcomponent-model-async=y -Sp3=y"
      echo "$WASMTIME serve --addr 127.0.0.1:$port -Scli=y $flags -C cache=y -C cache-config=$cache/config.toml $wasm" ;;
    spin) echo "env XDG_CACHE_HOME=$cache $SPIN up -f $(app "app-$workload" "$guest") --listen 127.0.0.1:$port" ;;
  esac
}

# measure PEER WORKLOAD PATH -> one table row
measure() {
  local peer=$1 workload=$2 path=$3 cache="$WORK/cache-$1-$2" port cmd
  port="$(free_port)"
  cmd="$(peer_command "$peer" "$workload" "$port" "$cache")"
  if [[ -z "$cmd" ]]; then return; fi
  local cold=() warm=() i ms
  for i in $(seq 1 "$STARTS"); do
    rm -rf "$cache"; cmd="$(peer_command "$peer" "$workload" "$port" "$cache")"
    ms="$(python3 bench/first_200.py --port "$port" "$path" $cmd 2>"$WORK/err")" || {
      printf '| %s | %s | did not serve: %s |\n' "$peer" "$workload" "$(tail -1 "$WORK/err")"; return; }
    cold+=("$ms")
    warm+=("$(python3 bench/first_200.py --port "$port" "$path" $cmd)")
  done
  $cmd > "$WORK/serve.log" 2>&1 & local pid=$!
  for _ in $(seq 1 3000); do curl -sf "http://127.0.0.1:$port$path" >/dev/null && break; sleep 0.01; done
  sleep 1
  local idle after
  idle="$(rss_mb $pid)"
  wrk_run "$peer-$workload" "http://127.0.0.1:$port$path" "$pid"
  after="$(rss_mb $pid)"
  kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true
  local ratio_rps="" ratio_cpu=""
  if [[ -n "${RAW_RPS:-}" ]]; then
    ratio_rps="$(awk -v a="$RPS" -v b="$RAW_RPS" 'BEGIN { printf " (%.0f %%)", 100 * a / b }')"
    ratio_cpu="$(awk -v a="$CPU_US" -v b="$RAW_CPU" 'BEGIN { printf " (%.1f×)", a / b }')"
  fi
  printf '| %s | %s | %s%s | %s | %s | %s µs%s | %s MB | %s MB | %s ms | %s ms |\n' \
    "$peer" "$workload" "$RPS" "$ratio_rps" "$P50" "$P99" "$CPU_US" "$ratio_cpu" "$idle" "$after" \
    "$(median "${cold[@]}")" "$(median "${warm[@]}")"
  if [[ $peer == raw-hyper ]]; then RAW_RPS=$RPS; RAW_CPU=$CPU_US; fi
}

peers=(raw-hyper gyre)
[[ -n "${WASMTIME:-}" ]] && peers+=(wasmtime)
[[ -n "${SPIN:-}" ]] && peers+=(spin)
echo "## Peers ($(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg); wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, loopback)"
echo
echo "| server | workload | requests/s (÷ raw) | p50 | p99 | server CPU per request (÷ raw) | RSS idle | RSS after load | first 200, cold cache | warm cache |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for workload in tiny:/ python:/hello; do
  for peer in "${peers[@]}"; do measure "$peer" "${workload%%:*}" "${workload#*:}"; done
done
[[ -n "${WASMTIME:-}" ]] || echo "(wasmtime serve not given: WASMTIME=…; cargo install wasmtime-cli --version 48.0.8 --locked)"
[[ -n "${SPIN:-}" ]] || echo "(spin up not given: SPIN=…; see the head of this script)"
