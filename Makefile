# swvmm: build, guest images, tests. `make setup` installs every Debian
# package the project needs (as root); see README.md.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# The Swift toolchain lives outside PATH on the project machines.
SWIFT_BIN ?= /opt/swift/usr/bin
ifneq ($(wildcard $(SWIFT_BIN)/swift),)
export PATH := $(SWIFT_BIN):$(PATH)
endif
SWIFT ?= swift
SWVMM := .build/release/swvmm
IMAGES := images/out

# Every Debian 12 package the project needs, in one list. By use:
#   Swift packages' C modules: libcapstone-dev libelf-dev pkg-config
#   Swift toolchain (swift.org's Debian 12 list, minus what is absent here):
#     binutils git ca-certificates libc6-dev libedit2 libgcc-12-dev libncurses-dev
#     libpython3-dev libsqlite3-0 libstdc++-12-dev libxml2-dev libz3-dev tzdata
#     unzip zlib1g-dev
#   initramfs: busybox-static cpio gzip kmod (modinfo) zstd xz-utils gcc (the sleeper)
#   small kernel: linux-source-6.1 make gcc flex bison bc perl libssl-dev libelf-dev
#   stock kernels: apt-get download + dpkg-deb (apt, dpkg: always present), file, lz4
#   reference guest and tests: qemu-system-x86 socat util-linux (setpriv)
#   host inspectors the shadow tests run: procps psmisc net-tools iproute2 coreutils
APT_PACKAGES := \
	libcapstone-dev libelf-dev pkg-config \
	binutils git ca-certificates libc6-dev libedit2 libgcc-12-dev libncurses-dev \
	libpython3-dev libsqlite3-0 libstdc++-12-dev libxml2-dev libz3-dev tzdata unzip zlib1g-dev \
	busybox-static cpio gzip kmod zstd xz-utils lz4 file \
	linux-source-6.1 make gcc flex bison bc perl libssl-dev \
	qemu-system-x86 socat util-linux \
	procps psmisc net-tools iproute2 coreutils

all: build

build:
	$(SWIFT) build -c release

images:
	nice $(MAKE) -C images

# The tests are XCTest; without Swift Testing's empty run, XCTest's summary
# ("Executed N tests, with ... failures") is the closing line CI reads.
test: images
	$(SWIFT) test --disable-swift-testing

# Boots the small kernel with the shell initramfs. On a host without
# hardware virtualization (no vmx/svm flag) KVM emulates kernel code: the
# bzImage's decompressor alone would take ~90 s, so boot the same kernel's
# vmlinux there; swvmm then stops with a platform explanation (status 3).
RUN_KERNEL ?= $(if $(shell grep -qwE 'vmx|svm' /proc/cpuinfo && echo yes),bzImage-tiny,vmlinux-tiny)
run: build images
	$(SWVMM) --kernel $(IMAGES)/$(RUN_KERNEL) --initrd $(IMAGES)/initramfs.cpio.gz

bench: build
	$(SWVMM) bench

# Installing packages needs root: through sudo when run as a user.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

setup:
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APT_PACKAGES)

clean:
	rm -rf .build
	$(MAKE) -C images clean

.PHONY: all build images test run bench setup clean
