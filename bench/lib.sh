# Helpers shared by the bench scripts (sourced; WORK, DURATION, CONNECTIONS
# and THREADS are the caller's).

app() { # app NAME GUEST [FIELDS] -> directory with a one-route app (FIELDS: more of the component's)
  mkdir -p "$WORK/$1"
  cat > "$WORK/$1/spin.toml" <<TOML
spin_manifest_version = 2
[application]
name = "$1"
[[trigger.http]]
route = "/..."
component = { source = "$PWD/target/guests/$2.wasm"${3:+, $3} }
TOML
  echo "$WORK/$1"
}

wait_serving() { # wait_serving LOGFILE -> base URL
  for _ in $(seq 1 6000); do
    if grep -q '^Serving ' "$1" 2>/dev/null; then grep -m1 '^Serving ' "$1" | cut -d' ' -f2; return; fi
    sleep 0.01
  done
  echo "server did not start: $(cat "$1")" >&2; exit 1
}

tree_pids() { # tree_pids PID -> PID and every descendant (spin up runs its trigger as a child)
  echo "$1"
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do tree_pids "$child"; done
}

cpu_ticks() { # cpu_ticks PID -> user + system clock ticks the process tree has used
  local total=0 pid
  for pid in $(tree_pids "$1"); do
    total=$(( total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0) ))
  done
  echo "$total"
}

rss_mb() { # rss_mb PID -> resident memory of the process tree, MB
  local total=0 pid
  for pid in $(tree_pids "$1"); do
    total=$(( total + $(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0) ))
  done
  awk -v k="$total" 'BEGIN { printf "%.1f", k / 1024 }'
}

# wrk_run NAME URL PID: one load run; sets RPS, P50, P99 and CPU_US (server
# CPU time per request, from /proc: what the load generator's share of the
# cores does not blur).
wrk_run() {
  curl -sf "$2" >/dev/null
  local before after
  before="$(cpu_ticks "$3")"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$2" > "$WORK/wrk-$1.txt"
  after="$(cpu_ticks "$3")"
  RPS="$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk-$1.txt")"
  P50="$(awk '$1=="50%" {print $2}' "$WORK/wrk-$1.txt")"
  P99="$(awk '$1=="99%" {print $2}' "$WORK/wrk-$1.txt")"
  CPU_US="$(awk -v b="$before" -v a="$after" -v r="$RPS" -v d="$DURATION" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.1f", (a - b) / hz * 1e6 / (r * d) }')"
}

load() { # load NAME URL PID -> one table row
  wrk_run "$@"
  printf '| %s | %s | %s | %s | %s µs |\n' "$1" "$RPS" "$P50" "$P99" "$CPU_US"
  echo "$RPS"  > "$WORK/rps-$1"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
