#!/bin/bash
# The KVM host: runs a command where /dev/kvm is hardware-assisted KVM.
#
# Usage: kvm-host.sh [OPTIONS] [--] COMMAND [ARG...]
#
# On a host whose CPU has VT-x or AMD-V (vmx/svm in /proc/cpuinfo) the command
# simply runs here. Otherwise it runs inside an L1: a QEMU/TCG guest with
# emulated AMD SVM (-cpu max) booting images/out/bzImage-6.12 with
# images/out/kvm-host-initramfs.cpio.gz, whose /init loads kvm_amd and enters
# the host's own root file system (virtio-9p, read-only) with chroot; /dev,
# /proc, /sys are the L1's, /tmp and /run are empty tmpfs. See
# shared/PLATFORM.md. The command runs in the caller's working directory with
# the caller's environment, as root.
#
# Options (each also settable by the environment variable in brackets):
#   --memory SIZE      L1 RAM, QEMU syntax (3G) [KVM_HOST_MEMORY, default 3G];
#                      give it at least 5G when a guest gets more than 3 GiB
#   --timeout SECONDS  whole run, retry included; 0 = none [KVM_HOST_TIMEOUT,
#                      default 1800; none with --interactive]
#   --scratch DIR      a writable directory shared with the L1 at the same
#                      path (the root is read-only there): put results here.
#                      Default: a temporary one, removed at the end. The
#                      command finds it in $KVM_HOST_SCRATCH. The script keeps
#                      its own files in DIR/.kvm-host/ (console.log: the L1's
#                      console).
#   --interactive      the terminal passed through to the command (QEMU's
#                      serial on stdio, no escape character of QEMU's: the
#                      command's own, e.g. swvmm's Ctrl-A x, ends it)
#   --l1               use the L1 even on a host with vmx/svm [KVM_HOST_FORCE_L1=1]
# Test knobs: KVM_HOST_KERNEL, KVM_HOST_INITRD (the L1's images),
#   KVM_HOST_SKIP_KVM=1 (the L1 does not load kvm_amd: no /dev/kvm),
#   KVM_HOST_BOOT_TIMEOUT (seconds until the L1 must be ready, default 180),
#   KVM_HOST_TCG=single (one host thread for all L1 vCPUs; default multi).
#
# Output: the command's stdout and stderr arrive on this script's stdout and
# stderr unchanged (in the L1: two raw serial ports). The script's own
# messages go to stderr, each line starting with "kvm-host: ".
#
# Exit status: the command's, or
#   124  the timeout expired (QEMU killed)
#   125  the KVM host itself failed: QEMU, the kernel or the initramfs missing,
#        the L1 crashed (twice at boot, or while the command ran), or no
#        /dev/kvm in the L1 (kvm_amd did not load)
#   128+N  this script was killed by signal N (QEMU killed with it)
#
# QEMU never outlives this script: it gets SIGKILL when the script dies
# (setpriv --pdeathsig), and is killed on INT/TERM/HUP and on every exit.
set -eu -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
L1_FAILED=125
TIMED_OUT=124

say() { echo "kvm-host: $*" >&2; }
die() { say "error: $*"; exit "$L1_FAILED"; }
usage() { sed -n '2,/^set -eu/{/^#/!d;s/^# \{0,1\}//;p}' "$0" >&2; exit "$L1_FAILED"; }

memory=${KVM_HOST_MEMORY:-3G}
timeout=${KVM_HOST_TIMEOUT:-}
scratch=
interactive=0
force_l1=${KVM_HOST_FORCE_L1:-0}
boot_timeout=${KVM_HOST_BOOT_TIMEOUT:-180}
while [ $# -gt 0 ]; do
    case "$1" in
        --memory) [ $# -ge 2 ] || usage; memory=$2; shift 2 ;;
        --timeout) [ $# -ge 2 ] || usage; timeout=$2; shift 2 ;;
        --scratch) [ $# -ge 2 ] || usage; scratch=$2; shift 2 ;;
        --interactive) interactive=1; shift ;;
        --l1) force_l1=1; shift ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) say "unknown option $1"; usage ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || usage
[ -n "$timeout" ] || { [ "$interactive" = 1 ] && timeout=0 || timeout=1800; }
[[ "$timeout" =~ ^[0-9]+$ ]] || die "--timeout wants whole seconds, not '$timeout'"
[[ "$memory" =~ ^[0-9]+[MG]?$ ]] || die "--memory wants a size like 3G or 5120M, not '$memory'"

own_scratch=0
if [ -z "$scratch" ]; then
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/kvm-host.XXXXXX")
    own_scratch=1
fi
[ -d "$scratch" ] || die "scratch directory $scratch does not exist"
scratch=$(cd "$scratch" && pwd -P)
export KVM_HOST_SCRATCH=$scratch

# --- Hardware virtualization here: no L1 needed. ---------------------------
if [ "$force_l1" != 1 ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
    [ "$own_scratch" = 0 ] || trap 'rm -rf "$scratch"' EXIT
    if [ "$timeout" = 0 ]; then
        "$@" && status=0 || status=$?
    else
        fg=(); [ "$interactive" = 0 ] || fg=(--foreground)
        timeout "${fg[@]}" -k 5 "$timeout" "$@" && status=0 || status=$?
        [ "$status" != 124 ] || say "timed out after $timeout s"
    fi
    exit "$status"
fi

# --- The L1. ----------------------------------------------------------------
out=${IMAGES_OUT:-$here/out}
kernel=${KVM_HOST_KERNEL:-$out/bzImage-6.12}
initrd=${KVM_HOST_INITRD:-$out/kvm-host-initramfs.cpio.gz}
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found: install qemu-system-x86 (make setup)"
command -v setpriv >/dev/null || die "setpriv not found: install util-linux (make setup)"
[ -r "$kernel" ] || die "L1 kernel $kernel missing: run 'make images'"
[ -r "$initrd" ] || die "L1 initramfs $initrd missing: run 'make images'"

control=$scratch/.kvm-host
rm -rf "$control"
mkdir -p "$control"
private=$(mktemp -d "${TMPDIR:-/tmp}/kvm-host-run.XXXXXX")

qemu_pid= readers=() saved_tty=
if [ "$interactive" = 1 ] && [ -t 0 ]; then saved_tty=$(stty -g); fi

# A comma separates QEMU's option fields; a literal one is doubled.
qemu_path() { printf '%s' "${1//,/,,}"; }

# The readers of the output FIFOs end at end-of-file. A QEMU that died before
# opening a FIFO leaves its reader blocked in open(): opening the FIFO
# read-write (never blocks) and closing it again releases that reader.
release_readers() {
    local fifo pid
    for fifo in "$private/out" "$private/err"; do
        [ -p "$fifo" ] || continue
        exec 4<>"$fifo"; exec 4>&-
    done
    for pid in "${readers[@]}"; do wait "$pid" 2>/dev/null || true; done
    readers=()
}

stop_qemu() {
    if [ -n "$qemu_pid" ]; then
        kill -KILL "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
        qemu_pid=
    fi
}
cleanup() {
    stop_qemu
    release_readers
    # QEMU puts the terminal in raw mode and cannot restore it when killed.
    [ -z "$saved_tty" ] || stty "$saved_tty" 2>/dev/null || true
    rm -rf "$private"
    [ "$own_scratch" = 0 ] || rm -rf "$scratch"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM
trap 'exit 129' HUP

# The command, with the caller's environment and working directory, for the
# L1's chroot (bash there is the host's own /bin/bash). Variables that
# describe this shell or session rather than the caller's setup stay behind.
{
    echo "# written by kvm-host.sh"
    for name in $(compgen -e); do
        case "$name" in
            PWD|OLDPWD|SHLVL|_|BASH_*|SSH_*|DISPLAY|WAYLAND_DISPLAY|DBUS_SESSION_BUS_ADDRESS|XDG_RUNTIME_DIR) continue ;;
        esac
        printf 'export %s=%q\n' "$name" "${!name}"
    done
    # Under /tmp (an empty tmpfs in the L1) the directory has to be made.
    printf 'cd -- %q 2>/dev/null || { mkdir -p -- %q && cd -- %q && echo "kvm-host: note: %s is empty in the L1 (only the scratch directory is shared under /tmp)" >&2; }\n' \
        "$PWD" "$PWD" "$PWD" "$PWD"
    printf 'exec'; printf ' %q' "$@"; echo
} > "$control/run.sh"

rows= cols=
if [ "$interactive" = 1 ] && [ -t 0 ]; then
    read -r rows cols < <(stty size 2>/dev/null) || true
fi
cat > "$control/config" <<EOF
SCRATCH='$scratch'
INTERACTIVE=$interactive
ROWS=$rows
COLS=$cols
EOF
case "$scratch" in *\'*) die "the scratch path must not contain a single quote: $scratch" ;; esac

if [ "$interactive" = 1 ] && [ "$force_l1" != 1 ]; then
    say "no VT-x/AMD-V on this host: running in the KVM host, a QEMU/TCG L1 with emulated AMD SVM (slow: every instruction emulated); a host with VT-x/AMD-V runs the same command directly, at full speed"
fi

# clearcpuid=cx16: the L1's kernel stops using `lock cmpxchg16b` (SLUB runs
# it constantly; multi-threaded TCG can corrupt RFLAGS after it, see below),
# while user space, swvmm included, still has the instruction.
append="console=ttyS0 quiet panic=-1 oops=panic mitigations=off clearcpuid=cx16"
[ "${KVM_HOST_SKIP_KVM:-0}" != 1 ] || append+=" kvmhost.skipkvm"

start=$SECONDS
deadline=$(( timeout > 0 ? SECONDS + timeout : 0 ))

# One boot of the L1; sets qemu_status. Returns after QEMU has exited.
run_l1() {
    local attempt=$1
    rm -f "$control"/{ready,status,error,qemu-resets.log}
    local serial=()
    if [ "$interactive" = 1 ]; then
        serial=(-chardev stdio,id=term,mux=off,signal=off -serial chardev:term)
        exec 3<&0
    else
        exec 3</dev/null
        rm -f "$private"/{out,err}
        mkfifo "$private/out" "$private/err"
        cat "$private/out" & readers+=($!)
        cat "$private/err" >&2 & readers+=($!)
        serial=(-chardev "file,id=out,path=$(qemu_path "$private/out")" -serial chardev:out
                -chardev "file,id=err,path=$(qemu_path "$private/err")" -serial chardev:err)
    fi
    # Multi-threaded TCG, one host thread per L1 vCPU. Measured on a 2-core
    # host: swvmm booting bzImage-tiny (1 vCPU) then Debian 6.12 (2 vCPUs)
    # took 7 s + 21 s in the L1 (38 s with its boot); with thread=single the
    # L1 itself booted (10 s) but tiny had not reached /init after 390 s.
    # The rare early L1 oops of multi-threaded TCG is covered by the retry.
    # CX16 stays in QEMU's CPU model (swvmm, a Swift program, needs
    # `cmpxchg16b` in the L1; the kernel is told not to use it, above; the
    # README's KVM host section says why swvmm's guests keep it).
    setpriv --pdeathsig KILL -- qemu-system-x86_64 \
        -accel "tcg,thread=${KVM_HOST_TCG:-multi}" -cpu max -smp 2 -m "$memory" \
        -nodefaults -no-user-config -display none -monitor none -no-reboot \
        -d cpu_reset -D "$(qemu_path "$control/qemu-resets.log")" \
        -kernel "$kernel" -initrd "$initrd" -append "$append" \
        -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
        -virtfs "local,path=$(qemu_path "$scratch"),mount_tag=scratch,security_model=none,multidevs=remap" \
        -chardev "file,id=console,path=$(qemu_path "$control/console.log")" -serial chardev:console \
        "${serial[@]}" \
        <&3 2> "$control/qemu-stderr.log" &
    qemu_pid=$!
    local booted=0 boot_start=$SECONDS
    while kill -0 "$qemu_pid" 2>/dev/null; do
        if [ "$booted" = 0 ] && [ -e "$control/ready" ]; then
            booted=1
            log_lines_at_ready=$(wc -l < "$control/qemu-resets.log" 2>/dev/null || echo 0)
            [ -n "${KVM_HOST_VERBOSE:-}" ] && say "L1 ready after $((SECONDS - boot_start)) s"
        fi
        if [ "$deadline" -gt 0 ] && [ "$SECONDS" -ge "$deadline" ]; then
            stop_qemu
            say "timed out after $timeout s; QEMU killed"
            exit "$TIMED_OUT"
        fi
        if [ "$booted" = 0 ] && [ $((SECONDS - boot_start)) -ge "$boot_timeout" ]; then
            say "the L1 did not get ready in $boot_timeout s; QEMU killed"
            stop_qemu
            break
        fi
        sleep 0.2
    done
    qemu_status=0
    if [ -n "$qemu_pid" ]; then wait "$qemu_pid" || qemu_status=$?; fi
    qemu_pid=
    release_readers
}

# An L1 that dies without a word on its console: QEMU logs "Triple fault"
# when that was the cause (with -no-reboot it then exits at once).
log_lines_at_ready=0
reset_report() {
    tail -n "+$((log_lines_at_ready + 1))" "$control/qemu-resets.log" 2>/dev/null | grep -q "^Triple fault" || return 0
    say "QEMU logged a triple fault of the L1 itself (a nested guest's would be an exit to the L1's KVM)"
}

console_tail() {
    if [ -s "$control/qemu-stderr.log" ]; then
        sed 's/^/kvm-host:   qemu: /' "$control/qemu-stderr.log" | tail -n 5 >&2
    fi
    if [ -s "$control/console.log" ]; then
        say "last lines of the L1's console ($control/console.log):"
        tr -d '\r' < "$control/console.log" | tail -n "${1:-12}" | sed 's/^/kvm-host:   /' >&2
    fi
}

for attempt in 1 2; do
    run_l1 "$attempt"
    if [ -e "$control/status" ]; then
        exit "$(cat "$control/status")"
    fi
    if [ -e "$control/error" ]; then
        say "error: $(cat "$control/error")"
        exit "$L1_FAILED"
    fi
    if [ -e "$control/ready" ]; then
        say "error: the L1 died while the command ran (QEMU status $qemu_status)"
        reset_report
        console_tail 30
        exit "$L1_FAILED"
    fi
    # Died before the command started: a flaky boot (PLATFORM.md: multi-
    # threaded TCG sometimes oopses the L1 early) or a broken setup.
    cp "$control/console.log" "$control/console-attempt$attempt.log" 2>/dev/null || true
    if [ "$attempt" = 1 ]; then
        say "the L1 ended before it was ready (QEMU status $qemu_status); retrying once"
        console_tail 8
    else
        say "error: the L1 failed to boot twice (QEMU status $qemu_status)"
        console_tail 20
        exit "$L1_FAILED"
    fi
done
