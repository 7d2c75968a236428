#!/bin/bash
# `swvmm bench shadow --vm` on Debian kernels booted by swvmm with --shadow,
# one after the other. Runs where /dev/kvm is hardware-assisted: in the KVM
# host (make bench-shadow-vm runs it there through images/kvm-host.sh).
#
# Usage: bench-native-shadow.sh OUTDIR SERIES...     SERIES: 6.1 | 6.12
#   OUTDIR/SERIES/results.{csv,json}, chart.svg, table.md   the bench's output
#   OUTDIR/SERIES/swvmm.err, console.log                   the VM's own output
#   OUTDIR/SERIES/cache                                    the memos (XDG_CACHE_HOME)
# Environment: SWVMM (the binary, default .build/debug/swvmm), BENCH_CPUS
# (the guest's own vCPUs; S gets one more; default 1), BENCH_RUNS (runs of
# each tool, default 3), BENCH_SETUP_RUNS (bootstraps and reconnects, default 10),
# BENCH_ONLY (tools to bench, separated by commas: "ps -e,lsmod"; default all).
set -eu -o pipefail

die() { echo "bench-native-shadow: error: $*" >&2; exit 1; }
say() { echo "bench-native-shadow: $*" >&2; }

[ $# -ge 2 ] || die "usage: $0 OUTDIR 6.1|6.12..."
outdir=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
images=${IMAGES_OUT:-$here/out}
swvmm=${SWVMM:-$here/../.build/debug/swvmm}
[ -x "$swvmm" ] || die "$swvmm is not built: run 'make build'"
[ -e /dev/kvm ] || die "no /dev/kvm here: run this through images/kvm-host.sh"
# The guest's boot, /init's known state, then a shell on the console.
ready=SWVMM-KNOWN-STATE-READY
vm=
stop_vm() {
    [ -n "$vm" ] || return 0
    kill -TERM "$vm" 2>/dev/null || true
    wait "$vm" 2>/dev/null || true
    vm=
}
trap stop_vm EXIT

for series in "$@"; do
    case "$series" in 6.1|6.12) ;; *) die "unknown kernel series '$series' (expected 6.1 or 6.12)" ;; esac
    kernel=$images/vmlinux-$series initrd=$images/initramfs-$series.cpio.gz
    [ -r "$kernel" ] && [ -r "$initrd" ] || die "$kernel or $initrd missing: run 'make images'"
    dir=$outdir/$series socket=/tmp/swvmm-bench-$series.sock
    mkdir -p "$dir"
    # The VM's swvmm keeps the memos the bench's training runs make in its
    # user's cache: a fresh one per kernel, writable (the KVM host's $HOME
    # is the host's, read-only).
    export XDG_CACHE_HOME=$dir/cache
    rm -rf "$XDG_CACHE_HOME"
    # A guest that dies or stalls before it is ready (QEMU/TCG's multi-vCPU
    # race under the L1) is booted once more.
    for attempt in 1 2; do
        say "[$series] booting (attempt $attempt)"
        # Nothing is typed on the console: the bench reaches the guest through the socket alone.
        "$swvmm" run --kernel "$kernel" --initrd "$initrd" --memory 1G --cpus "${BENCH_CPUS:-1}" \
            --shadow --api-socket "$socket" \
            --cmdline "console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nomux i8042.dumbkbd swvmm.mode=known-state" \
            </dev/null >"$dir/console.log" 2>"$dir/swvmm.err" &
        vm=$!
        # Ready, dead, or stalled: no console output for 3 minutes (a boot
        # that hangs bringing up a CPU under the emulated L1).
        size=-1 still=0
        while ! grep -q "$ready" "$dir/console.log" 2>/dev/null && kill -0 "$vm" 2>/dev/null && [ "$still" -lt 180 ]; do
            now=$(stat -c %s "$dir/console.log" 2>/dev/null || echo 0)
            if [ "$now" = "$size" ]; then still=$((still + 1)); else size=$now still=0; fi
            sleep 1
        done
        grep -q "$ready" "$dir/console.log" && break
        say "[$series] the guest was not ready: $(tail -c 400 "$dir/console.log" | tr -d '\r')"
        stop_vm
        [ "$attempt" = 2 ] && die "[$series] the guest never became ready"
    done
    say "[$series] ready; benchmarking"
    only=()
    IFS=, read -ra tools <<< "${BENCH_ONLY:-}"
    for tool in "${tools[@]}"; do only+=(--only "$tool"); done
    "$swvmm" bench shadow --vm "$socket" --runs "${BENCH_RUNS:-3}" --setup-runs "${BENCH_SETUP_RUNS:-10}" \
        "${only[@]}" --output "$dir" >"$dir/table.md"
    cat "$dir/table.md"
    stop_vm
done
