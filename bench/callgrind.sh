#!/usr/bin/env bash
# Instructions per tiny request, counted by valgrind's callgrind: repeatable
# to a few instructions in a thousand, so it catches regressions that the
# wall-clock benchmark (bench/run.sh) cannot see on a noisy machine.
#
# `gyre up` runs the tiny WAT guest under callgrind with instrumentation
# off; after a warm-up, instrumentation is switched on for REQUESTS
# sequential keep-alive requests (ROUNDS times), and the counted
# instructions of the whole process (every thread: tokio workers, the epoch
# ticker) are divided by REQUESTS. The median of the rounds is compared with
# bench/callgrind-baseline; more than 10 % above it fails.
#
#   bench/callgrind.sh                    # build release, count, check
#   GYRE=/path/to/gyre bench/callgrind.sh # another binary (an older commit)
#   UPDATE=1 bench/callgrind.sh           # write the new baseline
#   PROFILE=out.cg bench/callgrind.sh     # keep round 1's profile there, print the top functions
#                                         # (callgrind_annotate --inclusive=yes out.cg for the tree)
#
# Needs valgrind (apt-get install valgrind) and python3. The pooling
# allocator's default reservation (1000 instances) is more address space
# than valgrind offers, so the pool is sized to 8 instances here
# (SPIN_WASMTIME_INSTANCE_COUNT); the request path is the same.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS="${REQUESTS:-1000}"
ROUNDS="${ROUNDS:-3}"
BASELINE_FILE=bench/callgrind-baseline
command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install valgrind" >&2; exit 1; }
tests/apps/build.sh hello-wat >&2
if [[ -z "${GYRE:-}" ]]; then
  cargo build --release -p gyre >&2
  GYRE=target/release/gyre
fi
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

source bench/lib.sh
APP="$(app tiny hello-wat)"
cat > "$WORK/client.py" <<'PY'
import http.client, sys
host, port = sys.argv[1].rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port))
for _ in range(int(sys.argv[2])):
    conn.request("GET", "/")
    response = conn.getresponse()
    body = response.read()
    if response.status != 200 or body != b"Hello, Gyre!\n":
        sys.exit(f"unexpected answer {response.status}: {body!r}")
PY

SPIN_WASMTIME_INSTANCE_COUNT=8 GYRE_CACHE_DIR="$WORK/cache" \
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/out.%p" \
  "$GYRE" up -f "$APP" --listen 127.0.0.1:0 -q > "$WORK/log" 2> "$WORK/err" & PID=$!
for _ in $(seq 1 1200); do
  grep -q '^Serving ' "$WORK/log" 2>/dev/null && break
  kill -0 $PID 2>/dev/null || { echo "gyre up failed under valgrind:" >&2; cat "$WORK/err" >&2; exit 1; }
  sleep 0.1
done
addr="$(grep -m1 '^Serving ' "$WORK/log" | sed 's|^Serving http://||')"
[[ -n "$addr" ]] || { echo "gyre up did not start under valgrind:" >&2; cat "$WORK/err" >&2; exit 1; }
if grep -q 'pooling allocator unavailable' "$WORK/err"; then
  echo "the pooling allocator did not fit under valgrind; the count would not be the real path:" >&2
  cat "$WORK/err" >&2; exit 1
fi
python3 "$WORK/client.py" "$addr" 200   # warm-up: connection, pool slots, caches

control() { callgrind_control "$@" "$PID" > /dev/null 2>&1; }
counts=()
for round in $(seq 1 "$ROUNDS"); do
  control --zero
  control --instr=on
  python3 "$WORK/client.py" "$addr" "$REQUESTS"
  control --instr=off
  control --dump="round $round"
  dump="$(ls -t "$WORK"/out.$PID.* | head -1)"
  total="$(awk '/^totals:/ { print $2 }' "$dump")"
  counts+=("$((total / REQUESTS))")
  if [[ -n "${PROFILE:-}" && $round == 1 ]]; then cp "$dump" "$PROFILE"; fi
done
kill -TERM $PID; wait $PID 2>/dev/null || true

median="$(median "${counts[@]}")"
echo "instructions per tiny request: $median (rounds: ${counts[*]})"
if [[ -n "${PROFILE:-}" ]]; then
  callgrind_annotate "$PROFILE" 2>/dev/null | grep -E "^ *[0-9,]+ \(" | head -40
fi
if [[ -n "${UPDATE:-}" ]]; then
  echo "$median" > "$BASELINE_FILE"
  echo "baseline written to $BASELINE_FILE" >&2
elif [[ -f "$BASELINE_FILE" ]]; then
  baseline="$(cat "$BASELINE_FILE")"
  awk -v m="$median" -v b="$baseline" 'BEGIN {
    printf "baseline %d: %+.1f %%\n", b, 100 * (m - b) / b
    exit (m > b * 1.10) ? 1 : 0
  }' || { echo "more than 10 % above the baseline ($BASELINE_FILE)" >&2; exit 1; }
fi
