#!/usr/bin/env bash
# CTest e2e.MeshBench.QuickCompleteness: `make bench QUICK=1` in a scratch dir, then a check
# that every scenario x workload x topology is there with sane non-zero metrics. It asserts
# completeness only, never a speed (the machine may be busy with other tests).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(realpath "${1:-${SM_BUILD_DIR:-$here/../../build}}")
if [ "$(id -u)" != 0 ]; then
  echo "[  SKIPPED ] needs root: the mesh bench creates netns, cgroups, BPF pins and iptables rules"
  exit 77
fi
out=$(mktemp -d /tmp/sm-meshq.XXXXXX)
trap 'rm -rf "$out"' EXIT
/usr/bin/python3 "$here/mesh.py" --quick --build "$build" --out "$out"
/usr/bin/python3 "$here/report.py" --check "$out/results.json"
/usr/bin/python3 "$here/report.py" "$out/results.json" >/dev/null
test -s "$out/results.md" && test -s "$out/chart.svg"
