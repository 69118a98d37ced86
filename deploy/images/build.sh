#!/usr/bin/env bash
# Builds the OCI images localhost/sockmesh-loader:dev and localhost/sockmesh-proxy:dev
# with buildah, from scratch: each holds its binaries (debug info stripped), the shared
# libraries they load (as ldd resolves them on this Debian host) and nothing else, so no
# registry and no base image are needed.
#
#   deploy/images/build.sh [BUILD_DIR]      (as root; BUILD_DIR defaults to ./build)
#
# sockmesh-loader: /usr/bin/sockmesh-loader (the BPF object is compiled in as a libbpf
#   skeleton, so there is no .o to ship), /usr/bin/sockmesh-cni (statically linked: the
#   agent copies it onto the node, whose libraries we do not know), /usr/sbin/bpftool for
#   inspection, and busybox as /bin/sh and a few tools, which the DaemonSet's probes run.
# sockmesh-proxy: /usr/bin/sockmesh-proxy, running as uid/gid 1337 by default.
set -euo pipefail

build_dir=${1:-build}
loader_bin=$build_dir/bin/sockmesh-loader
proxy_bin=$build_dir/bin/sockmesh-proxy
cni_bin=$build_dir/bin/sockmesh-cni
loader_image=localhost/sockmesh-loader:dev
proxy_image=localhost/sockmesh-proxy:dev

die() {
  echo "build.sh: $*" >&2
  exit 1
}
[ "$(id -u)" = 0 ] || die "run as root (buildah keeps images in root's container storage)"
for tool in buildah ldd strip busybox; do
  command -v "$tool" >/dev/null || die "$tool not found (sudo make deps installs it)"
done
bpftool=$(command -v bpftool) || die "bpftool not found (sudo make deps installs it)"
for f in "$loader_bin" "$proxy_bin" "$cni_bin"; do
  [ -x "$f" ] || die "$f not found: build first (make build, or pass the build dir)"
done

staging=$(mktemp -d /tmp/sm-images.XXXXXX)
containers=()
cleanup() {
  local c
  for c in "${containers[@]}"; do
    [ -n "$c" ] && { buildah rm "$c" >/dev/null 2>&1 || true; }
  done
  rm -rf "$staging"
}
trap cleanup EXIT

# add_elf ROOT SRC DEST: SRC at ROOT/DEST (debug info stripped), plus every shared
# library and the dynamic loader it needs, at the paths ldd resolves.
add_elf() {
  local root=$1 src=$2 dest=$3 lib
  mkdir -p "$root$(dirname "$dest")"
  strip --strip-debug -o "$root$dest" "$src"
  while read -r lib; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done < <(ldd "$src" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
}

# commit ROOT IMAGE CONFIG...: a scratch image with ROOT's files, configured by the
# buildah config flags, committed as IMAGE; the image it replaces is removed.
commit() {
  local root=$1 image=$2 old new ctr
  shift 2
  old=$(buildah images --noheading --format '{{.ID}}' "$image" 2>/dev/null || true)
  ctr=$(buildah from scratch)
  containers+=("$ctr")
  buildah copy --quiet "$ctr" "$root" / >/dev/null
  buildah config --env PATH=/usr/bin:/usr/sbin:/bin \
    --label org.opencontainers.image.source=sockmesh \
    --label org.opencontainers.image.revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "$@" "$ctr"
  buildah commit --quiet --rm "$ctr" "$image" >/dev/null
  containers=("${containers[@]/$ctr/}")
  new=$(buildah images --noheading --format '{{.ID}}' "$image")
  if [ -n "$old" ] && [ "$old" != "$new" ]; then
    buildah rmi "$old" >/dev/null 2>&1 || true # still used by a container: leave it
  fi
}

report() {
  local image=$1 root=$2 bytes
  bytes=$(buildah inspect --type image --format '{{.ImageSize}}' "$image" 2>/dev/null || true)
  [ -n "$bytes" ] && [ "$bytes" != 0 ] || bytes=$(du -sb "$root" | cut -f1)
  awk -v i="$image" -v b="$bytes" -v n="$(find "$root" -type f | wc -l)" \
    'BEGIN { printf "%-36s %6.1f MiB  (%d bytes, %d files)\n", i, b / 1048576, b, n }'
}

# --- sockmesh-loader ----------------------------------------------------------------
loader_root=$staging/loader
add_elf "$loader_root" "$loader_bin" /usr/bin/sockmesh-loader
add_elf "$loader_root" "$cni_bin" /usr/bin/sockmesh-cni
add_elf "$loader_root" "$bpftool" /usr/sbin/bpftool
mkdir -p "$loader_root/bin" "$loader_root/run/sockmesh" "$loader_root/tmp"
add_elf "$loader_root" "$(command -v busybox)" /bin/busybox
for applet in sh cat ls stat date touch grep find mount ps; do
  ln -s busybox "$loader_root/bin/$applet"
done
commit "$loader_root" "$loader_image" \
  --entrypoint '["/usr/bin/sockmesh-loader"]' --cmd status \
  --label org.opencontainers.image.title=sockmesh-loader

# --- sockmesh-proxy -----------------------------------------------------------------
proxy_root=$staging/proxy
add_elf "$proxy_root" "$proxy_bin" /usr/bin/sockmesh-proxy
mkdir -p "$proxy_root/tmp"
commit "$proxy_root" "$proxy_image" \
  --entrypoint '["/usr/bin/sockmesh-proxy"]' --user 1337:1337 \
  --port 15001 --port 15006 --port 15000 \
  --label org.opencontainers.image.title=sockmesh-proxy

report "$loader_image" "$loader_root"
report "$proxy_image" "$proxy_root"
