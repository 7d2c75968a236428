#!/bin/bash
# Builds a busybox initramfs.
# Usage: mkinitramfs.sh OUTPUT.cpio.gz [KERNEL_TREE RELEASE MODULE...]
#   KERNEL_TREE  a kernel package unpacked with dpkg-deb -x (has lib/modules/RELEASE)
#   MODULE       path under lib/modules/RELEASE/kernel without suffix, e.g.
#                drivers/net/dummy; copied decompressed (busybox insmod reads
#                plain .ko only) and loaded in the order given
set -eu -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
say() { echo "[images] $*"; }
die() { echo "[images] error: $*" >&2; exit 1; }

[ $# = 1 ] || [ $# -ge 3 ] || die "usage: $0 OUTPUT.cpio.gz [KERNEL_TREE RELEASE MODULE...]"
output=$1; shift
tree=${1:-} release=${2:-}
[ $# -ge 2 ] && shift 2

busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || die "$busybox not found: install busybox-static"
for tool in cpio gzip file gcc; do
    command -v "$tool" >/dev/null || die "'$tool' not found (make setup installs it)"
done
# The initramfs has no libraries: busybox must be the static build.
file -L "$busybox" | grep -q 'statically linked' || die "$busybox is dynamically linked: install busybox-static (not busybox)"

stage=$(mktemp -d "${output%/*}/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root,etc,var/www,home/swvmmtester}
chmod 1777 "$stage/tmp"
cp "$busybox" "$stage/bin/busybox"
# Explicit links from the applet list (busybox --install would point them at
# the host's path of busybox).
"$busybox" --list-full | while IFS= read -r applet; do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$stage/$(dirname "$applet")"
    ln -sf /bin/busybox "$stage/$applet"
done

cp -r "$here/rootfs/." "$stage/"
install -m 0755 "$here/init" "$stage/init"
echo '<html><body>swvmm-guest</body></html>' > "$stage/var/www/index.html"

gcc -static -Os -s -o "$stage/usr/bin/swvmm-sleeper" "$here/sleeper.c" \
    || die "cannot build the static sleeper: install gcc and libc6-dev"
for n in 1 2 3; do ln -s swvmm-sleeper "$stage/usr/bin/swvmm-sleeper-$n"; done
ln -s swvmm-sleeper "$stage/usr/bin/swvmm-heartbeat"

: > "$stage/etc/swvmm-modules"
if [ -n "$tree" ]; then
    src="$tree/lib/modules/$release"
    [ -d "$src" ] || die "$src missing (kernel package not unpacked?)"
    dst="$stage/lib/modules/$release"
    mkdir -p "$dst"
    for module in "$@"; do
        found=
        for suffix in .ko .ko.xz .ko.zst .ko.gz; do
            [ -e "$src/kernel/$module$suffix" ] && { found="$src/kernel/$module$suffix"; break; }
        done
        [ -n "$found" ] || die "module $module not in $release (looked for $src/kernel/$module.ko*)"
        mkdir -p "$dst/kernel/$(dirname "$module")"
        case "$found" in
            *.xz)  xz -dc "$found" ;;
            *.zst) zstd -dcq "$found" ;;
            *.gz)  gzip -dc "$found" ;;
            *)     cat "$found" ;;
        esac > "$dst/kernel/$module.ko"
        # Keep /init simple: it loads the list in order and resolves nothing.
        if command -v modinfo >/dev/null; then
            deps=$(modinfo -F depends "$dst/kernel/$module.ko")
            [ -z "$deps" ] || say "note: $module depends on '$deps'; list those modules before it"
        fi
        echo "kernel/$module.ko" >> "$stage/etc/swvmm-modules"
    done
    cp "$src/modules.order" "$src/modules.builtin" "$dst/" 2>/dev/null || true
fi

# Ownership and /dev/console need root. /dev/console is in the archive
# because the kernel opens it for init's stdio before /init can mount
# devtmpfs (/init copes without it). As a user, every file becomes root's.
owner=()
if [ "$(id -u)" = 0 ]; then
    chown -R 4242:4242 "$stage/home/swvmmtester"
    mknod -m 600 "$stage/dev/console" c 5 1
else
    owner=(-R 0:0)
    say "note: not root: no /dev/console node, all files owned by root in the archive"
fi

(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible "${owner[@]}") | gzip -9n > "$output.tmp"
mv "$output.tmp" "$output"
say "initramfs $output ($(du -k "$output" | cut -f1) KiB${release:+, modules for $release: $*})"
