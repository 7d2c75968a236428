#!/bin/bash
# Writes OUTDIR/MANIFEST: what `make images` built, from which packages.
# Usage: manifest.sh OUTDIR MODULE...
set -eu -o pipefail
out=$1; shift
cd "$out"

pkgver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo unknown; }
line() { # file description
    if [ -e "$1" ]; then
        printf '%-24s %-10s %s  %s\n' "$1" "$(du -k --apparent-size "$1" | cut -f1)K" "$(sha256sum "$1" | cut -c1-16)" "$2"
    fi
}

{
    echo "# swvmm guest images (images/Makefile); file, size, sha256 prefix, origin"
    echo "# built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $(. /etc/os-release && echo "$PRETTY_NAME")"
    tiny=$(cat release-tiny 2>/dev/null || echo '?')
    line bzImage-tiny "Linux $tiny from linux-source-6.1 $(pkgver linux-source-6.1), tinyconfig + images/tiny.config"
    line vmlinux-tiny "Linux $tiny, uncompressed ELF with symbols"
    for series in 6.1 6.12; do
        [ -e "release-$series" ] || continue
        rel=$(cat "release-$series")
        line "bzImage-$series" "Linux $rel from $(cat "package-$series")"
        line "vmlinux-$series" "Linux $rel, extracted from bzImage-$series (stripped, no symbols)"
        line "initramfs-$series.cpio.gz" "busybox-static $(pkgver busybox-static), /init, modules of $rel: $*"
        line "initramfs-bench-$series.cpio.gz" "initramfs-$series.cpio.gz, then bench-tools.cpio.gz"
    done
    [ -e release-6.12 ] && line kvm-host-initramfs.cpio.gz "busybox-static $(pkgver busybox-static), kvm-host-init, kvm-key-holder, KVM and 9p modules of $(cat release-6.12) (the KVM host's L1)"
    line bench-tools.cpio.gz "this host's binaries of the bench's tools, procps $(pkgver procps), psmisc $(pkgver psmisc), net-tools $(pkgver net-tools), iproute2 $(pkgver iproute2), kmod $(pkgver kmod), coreutils $(pkgver coreutils), libc6 $(pkgver libc6)"
    line initramfs.cpio.gz "busybox-static $(pkgver busybox-static), /init, no modules (for bzImage-tiny)"
} > MANIFEST.tmp
mv MANIFEST.tmp MANIFEST
