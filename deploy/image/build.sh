#!/usr/bin/env bash
# Builds a minimal OCI image of Gyre without a container daemon (buildah,
# from scratch) and pushes it to a registry.
#
#   deploy/image/build.sh REFERENCE                 e.g. registry.example.com/team/gyre:0.1.0
#   GYRE_BINARY=target/debug/gyre deploy/image/build.sh --insecure 127.0.0.1:5000/gyre:dev
#
# The image holds the gyre binary (debug info stripped), the shared libraries it links (glibc,
# libgcc_s; taken from this machine by ldd, so build on the distribution
# you want to ship), the CA certificates for HTTPS registries and outbound
# calls, a passwd entry for the non-root user 65532 and a world-writable
# /tmp. Entrypoint `gyre`, so SpinKube's spintainer executor runs
# `gyre up --listen … -f … --runtime-config-file …` and a plain Deployment
# passes the same arguments. Caches (pulled apps, compiled code) go to
# /tmp/gyre-cache: mount an emptyDir there with a read-only root
# filesystem.
#
# Needs buildah (Debian package `buildah`); storage defaults to a
# throw-away directory (GYRE_BUILDAH_ROOT to keep one).
set -euo pipefail

insecure=""
if [[ "${1:-}" == "--insecure" || "${1:-}" == "-k" ]]; then
  insecure=1
  shift
fi
if [[ $# -ne 1 ]]; then
  sed -n '2,8p' "$0" >&2
  exit 2
fi
reference="$1"
root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
binary="${GYRE_BINARY:-$root_dir/target/release/gyre}"
if [[ ! -x "$binary" ]]; then
  echo "error: $binary not found: run \`cargo build --release -p gyre\` (or set GYRE_BINARY)" >&2
  exit 1
fi
command -v buildah >/dev/null || { echo "error: buildah is needed (apt-get install buildah)" >&2; exit 1; }

storage="${GYRE_BUILDAH_ROOT:-}"
cleanup_storage=""
if [[ -z "$storage" ]]; then
  storage="$(mktemp -d)"
  cleanup_storage=1
fi
bah() { buildah --root "$storage/root" --runroot "$storage/run" --storage-driver vfs "$@"; }

rootfs="$(mktemp -d)"
cleanup() {
  rm -rf "$rootfs"
  if [[ -n "$cleanup_storage" ]]; then
    # vfs layers may hold read-only directories.
    chmod -R u+w "$storage" 2>/dev/null || true
    rm -rf "$storage"
  fi
}
trap cleanup EXIT

# The file tree, as the image will have it.
install -D -m 0755 "$binary" "$rootfs/usr/bin/gyre"
# Line tables are most of a release binary (330 MB → 72 MB); symbols stay,
# so a backtrace still names functions.
if command -v strip >/dev/null; then
  strip --strip-debug "$rootfs/usr/bin/gyre"
else
  echo "warning: strip (binutils) not found: the image carries the binary's debug info" >&2
fi
ldd "$binary" | awk '/=> \// { print $3 } /^\s*\/lib/ { print $1 }' | while read -r lib; do
  install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
done
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$rootfs/etc" "$rootfs/tmp" "$rootfs/home/nonroot"
chmod 1777 "$rootfs/tmp"
echo "root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin" > "$rootfs/etc/passwd"
echo "root:x:0:
nonroot:x:65532:" > "$rootfs/etc/group"
chown 65532:65532 "$rootfs/home/nonroot" 2>/dev/null || true

container="$(bah from scratch)"
bah copy "$container" "$rootfs/" /
bah config \
  --entrypoint '["/usr/bin/gyre"]' \
  --cmd '["up", "--listen", "0.0.0.0:80"]' \
  --user 65532:65532 \
  --workingdir /home/nonroot \
  --env HOME=/home/nonroot \
  --env XDG_CACHE_HOME=/tmp/gyre-cache \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --port 80 \
  --label org.opencontainers.image.title=gyre \
  --label "org.opencontainers.image.description=Runs Spin applications, unchanged" \
  "$container"
bah commit --format oci --squash "$container" "gyre-image:build" >/dev/null
tls=()
if [[ -n "$insecure" ]]; then
  tls=(--tls-verify=false)
fi
bah push "${tls[@]}" "gyre-image:build" "docker://$reference"
echo "pushed $reference" >&2
