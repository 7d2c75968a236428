#!/bin/bash
# Stock Debian kernels for the reference guest.
#   kernel-deb.sh resolve SERIES          prints the newest package name of SERIES (6.1 | 6.12)
#   kernel-deb.sh fetch SERIES PKG OUTDIR downloads PKG, writes OUTDIR/bzImage-SERIES,
#                                         release-SERIES, vmlinux-SERIES and the modules
#                                         tree OUTDIR/kernel-SERIES/lib/modules/RELEASE
# Package names change with every ABI bump, so nothing here names a version.
set -eu -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
say() { echo "[images] $*"; }
die() { echo "[images] error: $*" >&2; exit 1; }

# Generic flavour only: the cloud flavour lacks X86_MPPARSE (PLATFORM.md), and
# -rt is a different scheduler.
pattern() {
    case "$1" in
        6.1)  echo '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' ;;
        6.12) echo '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' ;;
        *) die "unknown kernel series '$1' (expected 6.1 or 6.12)" ;;
    esac
}

resolve() {
    command -v apt-cache >/dev/null || die "apt-cache not found: a Debian host is needed"
    local re name
    re=$(pattern "$1")
    # Newest by version order among the packages apt can actually install.
    name=$(apt-cache search --names-only "$re" | awk '{print $1}' | grep -E "$re" | sort -V | tail -n 1 || true)
    [ -n "$name" ] || die "no package matches $re: run 'apt-get update' (make setup does)"
    echo "$name"
}

fetch() {
    local series=$1 pkg=$2 out=$3
    command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
    mkdir -p "$out/debs"
    out=$(cd "$out" && pwd)
    local deb
    deb=$(ls "$out/debs/${pkg}_"*.deb 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$deb" ]; then
        say "downloading $pkg"
        # As root, apt would hand the download to user _apt, who cannot write here.
        local sandbox=()
        [ "$(id -u)" != 0 ] || sandbox=(-o APT::Sandbox::User=root)
        (cd "$out/debs" && apt-get download -q "${sandbox[@]}" "$pkg") || die "apt-get download $pkg failed (network? run apt-get update)"
        deb=$(ls "$out/debs/${pkg}_"*.deb | sort -V | tail -n 1)
    fi
    local tree="$out/kernel-$series"
    say "unpacking $(basename "$deb")"
    rm -rf "$tree"
    mkdir -p "$tree"
    dpkg-deb -x "$deb" "$tree"
    local image release
    image=$(ls "$tree"/boot/vmlinuz-* | head -n 1)
    [ -n "$image" ] || die "$deb has no /boot/vmlinuz-*"
    release=${image##*/vmlinuz-}
    [ -d "$tree/lib/modules/$release" ] || die "$deb has no /lib/modules/$release"
    cp "$image" "$out/bzImage-$series"
    echo "$release" > "$out/release-$series"
    echo "$pkg $(dpkg-deb -f "$deb" Version)" > "$out/package-$series"
    # vmlinux: cheap to extract (one decompression), lets swvmm skip the
    # emulated decompressor.
    if "$here/extract-vmlinux.sh" "$out/bzImage-$series" "$out/vmlinux-$series.tmp"; then
        mv "$out/vmlinux-$series.tmp" "$out/vmlinux-$series"
    else
        rm -f "$out/vmlinux-$series.tmp"
        say "warning: could not extract vmlinux from bzImage-$series; continuing without it"
    fi
    # Drop older downloads of this series.
    find "$out/debs" -name "linux-image-${series}[.-]*.deb" ! -name "$(basename "$deb")" -delete
    say "kernel $series: $pkg -> bzImage-$series ($release)"
}

case "${1:-}" in
    resolve) [ $# = 2 ] || die "usage: $0 resolve SERIES"; resolve "$2" ;;
    fetch) [ $# = 4 ] || die "usage: $0 fetch SERIES PKG OUTDIR"; fetch "$2" "$3" "$4" ;;
    *) die "usage: $0 resolve SERIES | fetch SERIES PKG OUTDIR" ;;
esac
