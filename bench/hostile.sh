#!/usr/bin/env bash
# What an attack costs everyone else. For each hostile guest and hostile
# client of the test suite (crates/cli/tests/hostile.rs), measures a
# well-behaved client's requests/s and p99 latency (wrk, on a tiny
# component of the same app) while the attack runs, next to the same
# measurement with no attack. Release build, loopback, this machine.
#
#   bench/hostile.sh                       # 10 s per run
#   DURATION=20 bench/hostile.sh
#   ATTACKS="none loop" bench/hostile.sh    # only some
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
tests/apps/build.sh hello-wat py5-hostile >&2
cargo build --release -p gyre >&2
GYRE="$PWD/target/release/gyre"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

source bench/lib.sh
PORT="$(free_port)"
cat > "$WORK/spin.toml" <<TOML
spin_manifest_version = 2
[application]
name = "hostile-bench"
[[trigger.http]]
route = "/..."
component = "hostile"
[[trigger.http]]
route = "/bystander/..."
component = "bystander"
[component.hostile]
source = "$PWD/target/guests/py5-hostile.wasm"
allowed_outbound_hosts = ["http://127.0.0.1:$PORT"]
[component.bystander]
source = "$PWD/target/guests/hello-wat.wasm"
TOML
cat > "$WORK/runtime-config.toml" <<TOML
[limits]
request_timeout = "5s"
cpu_timeout = "2s"
max_instance_memory = "128MiB"
max_output = "1MiB"
header_read_timeout = "2s"
TOML
"$GYRE" up -f "$WORK" --listen "127.0.0.1:$PORT" -q --runtime-config-file "$WORK/runtime-config.toml" \
  > "$WORK/gyre.log" 2> "$WORK/gyre.err" &
for _ in $(seq 1 3000); do grep -q '^Serving ' "$WORK/gyre.log" 2>/dev/null && break; sleep 0.01; done
BASE="http://127.0.0.1:$PORT"
curl -sf "$BASE/bystander/" > /dev/null

echo "## Well-behaved requests during attacks ($(nproc) cores, wrk -t1 -c16 -d${DURATION}s on a tiny component; attacks by bench/attack.py)"
echo
echo "| attack | well-behaved req/s | p50 | p99 | non-2xx | attacks made → what they got |"
echo "|---|---|---|---|---|---|"
for attack in ${ATTACKS:-none loop alloc stdout fanout headers sleep slowloris bigheaders garbage}; do
  if [[ "$attack" != none ]]; then
    python3 bench/attack.py "$attack" "$BASE" "$DURATION" "$BASE/bystander/" > "$WORK/attack.txt" &
    APID=$!
    sleep 0.5
  fi
  wrk -t1 -c16 -d"${DURATION}s" --latency "$BASE/bystander/" > "$WORK/wrk.txt"
  outcome="—"
  if [[ "$attack" != none ]]; then wait $APID || true; outcome="$(cat "$WORK/attack.txt")"; fi
  rps="$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")"
  p50="$(awk '$1=="50%" {print $2}' "$WORK/wrk.txt")"
  p99="$(awk '$1=="99%" {print $2}' "$WORK/wrk.txt")"
  non2xx="$(awk '/Non-2xx/ {print $5}' "$WORK/wrk.txt")"
  printf '| %s | %s | %s | %s | %s | %s |\n' "$attack" "$rps" "$p50" "$p99" "${non2xx:-0}" "$outcome"
  sleep 1
done
curl -sf "$BASE/bystander/" > /dev/null && echo && echo "Server still serving after every attack."
