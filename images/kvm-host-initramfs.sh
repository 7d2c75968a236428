#!/bin/bash
# Builds the initramfs of the KVM host's L1 (images/kvm-host.sh): busybox,
# images/kvm-host-init as /init, images/kvm-key-holder.c built static, and
# the named modules of a stock kernel with everything they depend on,
# decompressed, in load order.
# Usage: kvm-host-initramfs.sh OUTPUT.cpio.gz KERNEL_TREE RELEASE MODULE...
#   KERNEL_TREE  a kernel package unpacked with dpkg-deb -x (has lib/modules/RELEASE)
#   MODULE       a module name (kvm-amd, 9pnet_virtio, ...)
set -eu -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
say() { echo "[images] $*"; }
die() { echo "[images] error: $*" >&2; exit 1; }

[ $# -ge 4 ] || die "usage: $0 OUTPUT.cpio.gz KERNEL_TREE RELEASE MODULE..."
output=$1 tree=$2 release=$3
shift 3

busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || die "$busybox not found: install busybox-static"
file -L "$busybox" | grep -q 'statically linked' || die "$busybox is dynamically linked: install busybox-static (not busybox)"
for tool in cpio gzip modinfo xz gcc; do
    command -v "$tool" >/dev/null || die "'$tool' not found (make setup installs it)"
done
src="$tree/lib/modules/$release"
[ -d "$src/kernel" ] || die "$src/kernel missing (kernel package not unpacked?)"

# Debian's package ships no modules.dep (depmod runs at install time), so
# dependencies come from each module's own "depends" field. Module names use
# '_' and '-' interchangeably; index the files by the '_' spelling.
declare -A path_of=()
while IFS= read -r file; do
    name=${file##*/}; name=${name%%.ko*}
    path_of[${name//-/_}]=$file
done < <(find "$src/kernel" -name '*.ko*')

order=()
declare -A state=()
visit() { # depth first: a module's dependencies are loaded before it
    local key=${1//-/_} dep
    case "${state[$key]:-}" in
        done) return ;;
        active) die "module dependency cycle at $1" ;;
    esac
    [ -n "${path_of[$key]:-}" ] || die "module $1 not in $release (looked under $src/kernel)"
    state[$key]=active
    for dep in $(modinfo -F depends "${path_of[$key]}" | tr ',' ' '); do
        visit "$dep"
    done
    state[$key]=done
    order+=("$key")
}
for module in "$@"; do visit "$module"; done

stage=$(mktemp -d "${output%/*}/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,host,scratch,modules}
cp "$busybox" "$stage/bin/busybox"
"$busybox" --list-full | while IFS= read -r applet; do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$stage/$(dirname "$applet")"
    ln -sf /bin/busybox "$stage/$applet"
done
install -m 0755 "$here/kvm-host-init" "$stage/init"
gcc -static -Os -s -o "$stage/bin/kvm-key-holder" "$here/kvm-key-holder.c" \
    || die "cannot build the KVM key holder: install gcc and libc6-dev"

# busybox insmod reads plain .ko only.
: > "$stage/modules/order"
for key in "${order[@]}"; do
    file=${path_of[$key]}
    case "$file" in
        *.xz)  xz -dc "$file" ;;
        *.zst) zstd -dcq "$file" ;;
        *.gz)  gzip -dc "$file" ;;
        *)     cat "$file" ;;
    esac > "$stage/modules/$key.ko"
    echo "$key" >> "$stage/modules/order"
done
echo "$release" > "$stage/modules/release"

owner=()
if [ "$(id -u)" = 0 ]; then
    mknod -m 600 "$stage/dev/console" c 5 1
else
    owner=(-R 0:0)
fi
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible "${owner[@]}") | gzip -9n > "$output.tmp"
mv "$output.tmp" "$output"
say "KVM host initramfs $output ($(du -k "$output" | cut -f1) KiB, modules of $release: ${order[*]})"
