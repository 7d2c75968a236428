#!/bin/bash
# Builds a cpio archive (gzip) of this host's binaries of `swvmm bench
# shadow`'s tools, with the shared libraries and dynamic loader they need at
# the paths they have here, under /bench/bin in the guest; appended to a
# guest's initramfs (the kernel unpacks concatenated archives in order) it
# lets the bench time the same binaries inside the guest (native_s).
# /bench/SHA256SUMS names each binary's hash, so the bench can tell whether
# the guest's copy is still this host's binary.
# Usage: bench-tools.sh OUTPUT.cpio.gz
set -eu -o pipefail

say() { echo "[images] $*"; }
die() { echo "[images] error: $*" >&2; exit 1; }

[ $# = 1 ] || die "usage: $0 OUTPUT.cpio.gz"
output=$1
# The programs of ShadowBenchmark.tools (Sources/swvmm/Bench/ShadowBenchmark.swift),
# and date, the timer around them.
tools="ps pstree lsmod netstat ss uname free uptime df ls cat date"

stage=$(mktemp -d "${output%/*}/.bench-stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bench/bin"

copy() { # a host file to the same path in the archive
    mkdir -p "$stage$(dirname "$1")"
    [ -e "$stage$1" ] || cp -L "$1" "$stage$1"
}

for tool in $tools; do
    path=$(command -v "$tool") || die "'$tool' not found on this host (make setup installs it)"
    binary=$(readlink -f "$path")
    # Multi-call binaries (lsmod is kmod) keep their name: a link to the binary's own name.
    cp "$binary" "$stage/bench/bin/$(basename "$binary")"
    [ "$(basename "$binary")" = "$tool" ] || ln -sf "$(basename "$binary")" "$stage/bench/bin/$tool"
    (cd "$stage/bench/bin" && sha256sum "$(basename "$binary")") >> "$stage/bench/SHA256SUMS.tmp"
    # ldd: "libX.so => /lib/.../libX.so (0x...)" and the loader's own line.
    # Copied under the name the binary asks for (cp -L: a link's target's bytes).
    ldd "$binary" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }' | while read -r library; do
        copy "$library"
    done
done
sort -u "$stage/bench/SHA256SUMS.tmp" > "$stage/bench/SHA256SUMS"
rm "$stage/bench/SHA256SUMS.tmp"

owner=()
[ "$(id -u)" = 0 ] || owner=(-R 0:0)
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible "${owner[@]}") | gzip -9n > "$output.tmp"
mv "$output.tmp" "$output"
say "bench tools $output ($(du -k "$output" | cut -f1) KiB: $tools)"
