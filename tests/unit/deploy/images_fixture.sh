#!/usr/bin/env bash
# Fixture of the container tests: builds localhost/sockmesh-{loader,proxy}:dev from this
# build dir's binaries with deploy/images/build.sh (the same as `make images`).
#   images_fixture.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
src=$1 build=$2
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (buildah and podman use root's container storage)"
  exit 77
fi
for tool in buildah podman runc; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed (sudo make deps installs it)"
    exit 77
  fi
done
cd "$src" && exec bash deploy/images/build.sh "$build"
