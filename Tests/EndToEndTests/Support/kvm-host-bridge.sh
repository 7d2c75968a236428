#!/bin/bash
# Runs inside the KVM host (images/kvm-host.sh ... -- kvm-host-bridge.sh DIR)
# and lets a test on the host drive guests booted there by swvmm, through
# files in DIR (a folder of the scratch directory, which both sides see):
#
#   DIR/req/N.boot   a shell command line that boots a guest (one at a time);
#                    its console goes to DIR/console-N.log, its stderr to
#                    DIR/swvmm-N.err, its stdin a FIFO of the bridge's
#   DIR/req/N.type   bytes typed on the running guest's console
#   DIR/req/N.exec   a bash script run here in the background: its stdout,
#                    stderr and status go to DIR/resp/N.out, N.err, N.rc
#   DIR/req/N.stop   SIGTERM to the running guest's swvmm; its status goes to
#                    DIR/resp/N.rc once it has exited
#   DIR/req/N.quit   stop everything and leave
#
# Requests are numbered from 0 and written whole (renamed into place); each
# is answered by DIR/resp/N.rc (N.done for typing). DIR/ready says the bridge
# runs. Every process started here ends with the bridge.
set -u
dir=$1
mkdir -p "$dir/req" "$dir/resp"
# The FIFO lives in the KVM host's own /tmp: 9p cannot make one.
fifo=$(mktemp -u /tmp/kvm-host-bridge.XXXXXX)
mkfifo "$fifo" || exit 1
# Held open for writing, so the guest's console never sees end of file.
exec 3<>"$fifo"
vm=
answer() { echo "$2" >"$dir/resp/$1.rc.tmp" && mv "$dir/resp/$1.rc.tmp" "$dir/resp/$1.rc"; }
stop_vm() {
    [ -n "$vm" ] || return 0
    kill -TERM "$vm" 2>/dev/null
    wait "$vm"
    local status=$?
    vm=
    return $status
}
cleanup() {
    stop_vm
    pkill -KILL -P $$ 2>/dev/null
}
trap cleanup EXIT
touch "$dir/ready"
n=0
while true; do
    request=$(ls "$dir/req/$n".* 2>/dev/null | head -n 1)
    if [ -z "$request" ]; then
        sleep 0.05
        continue
    fi
    case "$request" in
    *.boot)
        stop_vm
        line=$(cat "$request")
        ( eval "exec $line" ) <"$fifo" >"$dir/console-$n.log" 2>"$dir/swvmm-$n.err" &
        vm=$!
        answer "$n" 0 ;;
    *.type)
        cat "$request" >&3
        touch "$dir/resp/$n.done" ;;
    *.exec)
        ( bash "$request" >"$dir/resp/$n.out" 2>"$dir/resp/$n.err"; answer "$n" $? ) & ;;
    *.stop)
        stop_vm
        answer "$n" $? ;;
    *.quit)
        answer "$n" 0
        exit 0 ;;
    esac
    n=$((n + 1))
done
