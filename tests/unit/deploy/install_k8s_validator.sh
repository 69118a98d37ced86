#!/usr/bin/env bash
# Fixture for the manifest test: installs the pinned validator (deploy/kubernetes/validate:
# kubernetes-models and yaml, from the npm registry, by package-lock.json) into the build
# dir. Reruns are no-ops while the lock file is unchanged.
#   install_k8s_validator.sh SRC_DIR DEST_DIR
set -euo pipefail
src=$1 dest=$2
for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed (the machine's Node.js provides node and npm)"
    exit 77
  fi
done
mkdir -p "$dest"
cp "$src"/*.mjs "$dest/"
if [ -d "$dest/node_modules" ] && cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
  echo "validator already installed in $dest"
  exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dest/"
rm -rf "$dest/node_modules"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
echo "validator installed in $dest"
