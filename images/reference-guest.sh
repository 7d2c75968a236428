#!/bin/bash
# Reference guest for the shadow-context tests: a stock Debian kernel under
# QEMU/TCG (runs on any host, PLATFORM.md), booted into swvmm.mode=known-state.
# Usage: reference-guest.sh [--bench] SERIES WORKDIR     SERIES: 6.1 | 6.12
#   --bench              boot initramfs-bench-SERIES: /bench/bin has this host's
#                        binaries of the bench's tools (swvmm bench shadow
#                        --guest-console times them in the guest)
#   WORKDIR/serial.sock  the guest console (connect with: socat - UNIX-CONNECT:...)
#   WORKDIR/gdb.sock     QEMU's gdbstub
#   WORKDIR/qemu.pid     the pid of QEMU (this script execs it: same pid)
# QEMU runs in the foreground and gets SIGKILL when its parent dies, so a
# crashed test leaves no guest behind. Extra kernel arguments: $REFERENCE_GUEST_APPEND.
# The console's output is also logged to console.log and QEMU's CPU resets to
# qemu.log, in WORKDIR or in $REFERENCE_GUEST_LOG_DIR (kept after a test).
set -eu -o pipefail

die() { echo "reference-guest: error: $*" >&2; exit 1; }

flavour=
[ "${1:-}" = --bench ] && { flavour=-bench; shift; }
[ $# = 2 ] || die "usage: $0 [--bench] 6.1|6.12 WORKDIR"
series=$1 workdir=$2
case "$series" in 6.1|6.12) ;; *) die "unknown kernel series '$series' (expected 6.1 or 6.12)" ;; esac
out=${IMAGES_OUT:-$(cd "$(dirname "$0")" && pwd)/out}
kernel="$out/bzImage-$series"
initrd="$out/initramfs$flavour-$series.cpio.gz"
[ -r "$kernel" ] && [ -r "$initrd" ] || die "$kernel or $initrd missing: run 'make images'"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found: install qemu-system-x86"
command -v setpriv >/dev/null || die "setpriv not found: install util-linux"
[ -d "$workdir" ] || die "work directory $workdir does not exist"
workdir=$(cd "$workdir" && pwd)
rm -f "$workdir/serial.sock" "$workdir/gdb.sock"

echo "$$" > "$workdir/qemu.pid"
# cx16=off: multi-threaded TCG can corrupt RFLAGS at a `lock cmpxchg16b`
# (see kvm-host.sh); SLUB uses it on every allocation when the CPU has it.
exec setpriv --pdeathsig KILL -- qemu-system-x86_64 \
    -accel tcg -cpu max,cx16=off -smp 2 -m 512M \
    -nographic -no-reboot -display none -monitor none \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 swvmm.mode=known-state panic=-1 ${REFERENCE_GUEST_APPEND:-}" \
    -chardev "socket,id=console,path=$workdir/serial.sock,server=on,wait=off,logfile=${REFERENCE_GUEST_LOG_DIR:-$workdir}/console.log" \
    -serial chardev:console -d cpu_reset -D "${REFERENCE_GUEST_LOG_DIR:-$workdir}/qemu.log" \
    -gdb "unix:$workdir/gdb.sock,server=on,wait=off"
