#!/usr/bin/env bash
# Regenerates the vendored vmlinux.h of one architecture from a kernel's BTF, so the BPF
# object builds the same on every machine (CO-RE relocates field offsets at load time on
# whatever kernel runs it; the header only has to name the types and fields we use).
#
#   bpf/vmlinux/update.sh [ARCH [BTF_FILE]]
#
# ARCH is the BPF target arch (x86, arm64, riscv, s390, powerpc, loongarch; default: this
# machine's); BTF_FILE defaults to /sys/kernel/btf/vmlinux, so run it on a machine of that
# arch, or pass the BTF of such a kernel (e.g. extracted with `bpftool btf dump file
# vmlinux format raw`, or a /sys/kernel/btf/vmlinux copied from one).
# Needs a kernel with BTF newer than the features sockmesh uses (6.x).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "$(uname -m)" in
x86_64) native=x86 ;;
aarch64 | arm64) native=arm64 ;;
riscv64) native=riscv ;;
s390x) native=s390 ;;
ppc64le | ppc64) native=powerpc ;;
loongarch64) native=loongarch ;;
*) native=$(uname -m) ;;
esac
arch=${1:-$native}
btf=${2:-/sys/kernel/btf/vmlinux}
bpftool=$(command -v bpftool || echo /usr/sbin/bpftool)
[ -r "$btf" ] || { echo "update.sh: $btf is not readable (a kernel with CONFIG_DEBUG_INFO_BTF)" >&2; exit 1; }
[ -x "$bpftool" ] || { echo "update.sh: bpftool not found" >&2; exit 1; }
if [ "$arch" != "$native" ] && [ "$btf" = /sys/kernel/btf/vmlinux ]; then
  echo "update.sh: this machine is $native; pass the BTF of a $arch kernel" >&2
  exit 1
fi
mkdir -p "$here/$arch"
out=$here/$arch/vmlinux.h
"$bpftool" btf dump file "$btf" format c >"$out.tmp"
mv "$out.tmp" "$out"
if [ "$btf" = /sys/kernel/btf/vmlinux ]; then src="$(uname -r)"; else src="$btf"; fi
echo "$src" >"$here/$arch/SOURCE" # which kernel's BTF the header came from
echo "$out: $(wc -c <"$out") bytes from $btf ($src)"
