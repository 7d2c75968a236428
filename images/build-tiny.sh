#!/bin/bash
# Builds the small kernel: Debian's linux-source-6.1, `make tinyconfig`,
# tiny.config merged on top, then bzImage + vmlinux.
# Usage: build-tiny.sh OUTDIR   (writes OUTDIR/bzImage-tiny, vmlinux-tiny, release-tiny)
set -eu -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
fragment="$here/tiny.config"
tarball=${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
src="$out/build/linux-tiny"
jobs=${JOBS:-$(nproc)}

say() { echo "[images] $*"; }
die() { echo "[images] error: $*" >&2; exit 1; }

[ -r "$tarball" ] || die "$tarball missing: install the Debian package linux-source-6.1 (make setup)"
for tool in make gcc flex bison bc xz gzip perl; do
    command -v "$tool" >/dev/null || die "'$tool' not found (make setup installs the kernel build tools)"
done
[ -e /usr/include/openssl/opensslv.h ] || die "OpenSSL headers missing: install libssl-dev"
[ -e /usr/include/libelf.h ] || die "libelf headers missing: install libelf-dev"

# Unpack once; a newer tarball (new linux-source-6.1 upload) unpacks again.
if [ ! -e "$src/.swvmm-unpacked" ] || [ "$tarball" -nt "$src/.swvmm-unpacked" ]; then
    say "unpacking $tarball (about a minute)"
    rm -rf "$src"
    mkdir -p "$src"
    tar -xJf "$tarball" -C "$src" --strip-components=1
    touch "$src/.swvmm-unpacked"
fi

cd "$src"
say "configuring: tinyconfig + images/tiny.config"
make -s tinyconfig >/dev/null
scripts/kconfig/merge_config.sh -m .config "$fragment" >/dev/null
make -s olddefconfig >/dev/null

# Kconfig drops symbols whose dependencies are unmet without a word: check
# that every requested value made it into the final configuration.
missing=0
while IFS= read -r line; do
    case "$line" in
        CONFIG_*=*)
            grep -qxF "$line" .config || { echo "[images] config: wanted '$line', got '$(grep -E "^(# )?${line%%=*}[= ]" .config || echo absent)'" >&2; missing=1; }
            ;;
        "# CONFIG_"*" is not set")
            sym=${line#\# }; sym=${sym%% *}
            if grep -qE "^$sym=[ym]" .config; then echo "[images] config: wanted $sym off, but it is on" >&2; missing=1; fi
            ;;
    esac
done < "$fragment"
[ "$missing" = 0 ] || die "the tiny kernel configuration lost options requested in images/tiny.config (see above)"

# --no-print-directory: under a parent make (make images), make -w would add
# "Entering directory" lines to the captured release.
release=$(make -s --no-print-directory kernelrelease)
say "building tiny kernel $release (nice make -j$jobs bzImage; ~3 min on 2 cores)"
log="$out/build/tiny-kernel.log"
if ! nice make -j"$jobs" bzImage > "$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "tiny kernel build failed (full log: $log)"
fi
cp arch/x86/boot/bzImage "$out/bzImage-tiny.tmp" && mv "$out/bzImage-tiny.tmp" "$out/bzImage-tiny"
cp vmlinux "$out/vmlinux-tiny.tmp" && mv "$out/vmlinux-tiny.tmp" "$out/vmlinux-tiny"
cp .config "$out/config-tiny"
echo "$release" > "$out/release-tiny"
say "tiny kernel: $out/bzImage-tiny, $out/vmlinux-tiny ($release)"
