#!/usr/bin/env bash
# Gyre off one machine, measured on this one:
#   1. start to first 200 from `gyre up -f REF` (an app in a local
#      docker-registry): registry cold (pull + compile), blobs cached but
#      compiled code cold, and both warm; tiny WAT guest and Python SDK 5;
#      median of RUNS;
#   2. requests/s through HAProxy (health-checking /.well-known/spin/health)
#      with 1, 2 and 3 instances of the tiny app, each in its own network
#      namespace (loopback ports without root), next to one instance hit
#      directly.
# Needs docker-registry, haproxy, wrk, iproute2 (apt) and the guests
# (tests/apps/build.sh). On two cores the load generator, HAProxy and the
# instances share the same CPUs: more instances add isolation and
# failover, not throughput, until there are more cores.
#
#   bench/distribution.sh                  # 10 s per load run, 32 connections, 3 runs
#   DURATION=5 RUNS=5 bench/distribution.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
RUNS="${RUNS:-3}"
for tool in docker-registry haproxy wrk ip; do
  command -v "$tool" >/dev/null || { echo "$tool is needed (see the header)" >&2; exit 1; }
done
tests/apps/build.sh hello-wat py5-http >&2
cargo build --release -p gyre >&2
GYRE="$PWD/target/release/gyre"
WORK="$(mktemp -d)"
NETNS=()
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  ip link del gyre-bench-br 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() { for _ in $(seq 1 3000); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return; sleep 0.01; done; echo "nothing on $1:$2" >&2; exit 1; }

source bench/lib.sh

# 1. Start to first 200 from a registry.
REG_PORT="$(free_port)"
cat > "$WORK/registry.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $WORK/registry}}
http: {addr: 127.0.0.1:$REG_PORT}
YAML
docker-registry serve "$WORK/registry.yml" >/dev/null 2>&1 &
wait_port 127.0.0.1 "$REG_PORT"

echo "| app | registry cold (pull + compile) | blobs cached, compile cold | both warm |"
echo "|---|---|---|---|"
for pair in tiny:hello-wat python:py5-http; do
  name="${pair%%:*}"; guest="${pair#*:}"
  ref="127.0.0.1:$REG_PORT/bench/$name:v1"
  (cd "$(app "$name" "$guest")" && "$GYRE" registry push -k "$ref" >/dev/null 2>&1)
  path=/
  cold=(); cached=(); warm=()
  for run in $(seq 1 "$RUNS"); do
    export GYRE_REGISTRY_CACHE_DIR="$WORK/pulls-$name-$run"
    cold+=("$(python3 bench/first_200.py "$GYRE" "$ref" "$path" "$WORK/compiled-$name-$run-a" -k)")
    cached+=("$(python3 bench/first_200.py "$GYRE" "$ref" "$path" "$WORK/compiled-$name-$run-b" -k)")
    warm+=("$(python3 bench/first_200.py "$GYRE" "$ref" "$path" "$WORK/compiled-$name-$run-b" -k)")
  done
  unset GYRE_REGISTRY_CACHE_DIR
  echo "| $name | $(median "${cold[@]}") ms | $(median "${cached[@]}") ms | $(median "${warm[@]}") ms |"
done
echo

# 2. Requests/s through HAProxy with 1, 2, 3 instances.
TINY="$(app tiny-lb hello-wat)"
HOST=127.0.0.1
ADDRS=(127.0.0.1 127.0.0.1 127.0.0.1)
if ip link add gyre-bench-br type bridge 2>/dev/null; then
  HOST=10.250.0.1
  ip addr add "$HOST/24" dev gyre-bench-br
  ip link set gyre-bench-br up
  for i in 0 1 2; do
    ns="gyre-bench-$i"; NETNS+=("$ns")
    ip netns add "$ns"
    ip link add "gybv$i" type veth peer name "gybp$i"
    ip link set "gybp$i" netns "$ns"
    ip link set "gybv$i" master gyre-bench-br
    ip link set "gybv$i" up
    ip netns exec "$ns" ip addr add "10.250.0.$((11 + i))/24" dev "gybp$i"
    ip netns exec "$ns" ip link set "gybp$i" up
    ip netns exec "$ns" ip link set lo up
    ADDRS[$i]="10.250.0.$((11 + i))"
  done
  where="each instance in its own network namespace"
else
  where="loopback ports (no network namespaces without root)"
fi
PORTS=()
for i in 0 1 2; do
  port="$(free_port)"; PORTS+=("$port")
  prefix=()
  if [[ ${#NETNS[@]} -gt 0 ]]; then prefix=(ip netns exec "${NETNS[$i]}"); fi
  GYRE_CACHE_DIR="$WORK/compiled-lb" "${prefix[@]}" "$GYRE" up -f "$TINY" --listen "${ADDRS[$i]}:$port" -q >/dev/null 2>&1 &
  wait_port "${ADDRS[$i]}" "$port"
done

rps() { # rps URL -> requests/s
  curl -sf "$1" >/dev/null
  wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$1" | awk '/Requests\/sec/ {print $2}'
}

echo "Through HAProxy, $where; wrk $CONNECTIONS connections, ${DURATION} s:"
echo
echo "| instances | requests/s |"
echo "|---|---|"
echo "| 1, direct (no HAProxy) | $(rps "http://${ADDRS[0]}:${PORTS[0]}/") |"
for n in 1 2 3; do
  front="$(free_port)"
  servers=""
  for i in $(seq 0 $((n - 1))); do
    servers+="  server g$i ${ADDRS[$i]}:${PORTS[$i]} check"$'\n'
  done
  cat > "$WORK/haproxy-$n.cfg" <<CFG
global
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
frontend web
  bind 127.0.0.1:$front
  default_backend gyre
backend gyre
  balance roundrobin
  option httpchk GET /.well-known/spin/health
  default-server inter 1s fall 2 rise 1
$servers
CFG
  haproxy -db -f "$WORK/haproxy-$n.cfg" >/dev/null 2>&1 &
  pid=$!
  wait_port 127.0.0.1 "$front"
  sleep 1.2
  echo "| $n | $(rps "http://127.0.0.1:$front/") |"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
