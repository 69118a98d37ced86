#!/usr/bin/env bash
# `vagrant validate` accepts vagrant/Vagrantfile and rejects a broken copy of it (an
# unknown setting). Skipped where vagrant is not installed (make deps does not install it).
#   vagrant_validate_test.sh SOURCE_DIR
set -uo pipefail
src=$1
if ! command -v vagrant >/dev/null; then
  echo "SKIP: vagrant is not installed"
  exit 77
fi
tmp=$(mktemp -d /tmp/sm-deploy-vagrant.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# vagrant keeps its state under VAGRANT_HOME and the Vagrantfile's folder: both temporary.
export VAGRANT_HOME=$tmp/home VAGRANT_CHECKPOINT_DISABLE=1
validate() { # validate DIR: vagrant validate's exit code; its output on stdout
  (cd "$1" && vagrant validate --ignore-provider 2>&1)
}
mkdir "$tmp/good" "$tmp/broken"
cp "$src/vagrant/Vagrantfile" "$tmp/good/"
if ! out=$(validate "$tmp/good"); then
  echo "FAIL: vagrant validate rejects vagrant/Vagrantfile: $out"
  exit 1
fi
echo "$out"
sed 's/config.vm.hostname = /config.vm.hostnam = /' "$src/vagrant/Vagrantfile" >"$tmp/broken/Vagrantfile"
if cmp -s "$src/vagrant/Vagrantfile" "$tmp/broken/Vagrantfile"; then
  echo "FAIL: the broken copy is unchanged (test out of date)"
  exit 1
fi
if out=$(validate "$tmp/broken"); then
  echo "FAIL: vagrant validate accepts a Vagrantfile with an unknown setting: $out"
  exit 1
fi
grep -q hostnam <<<"$out" || { echo "FAIL: the error does not name the setting: $out"; exit 1; }
echo "broken copy rejected: $(grep -m1 hostnam <<<"$out")"
