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
# The binary `make run` boots with (built by `make build` when it is this default).
SWVMM ?= .build/release/swvmm
IMAGES := images/out

# Every Debian 12 package the project needs, in one list. By use:
#   Swift packages' C modules: libcapstone-dev libelf-dev pkg-config
#   Swift toolchain (swift.org's Debian 12 list, minus what is absent here):
#     binutils git ca-certificates libc6-dev libedit2 libgcc-12-dev libncurses-dev
#     libpython3-dev libsqlite3-0 libstdc++-12-dev libxml2-dev libz3-dev tzdata
#     unzip zlib1g-dev
#   initramfs: busybox-static cpio gzip kmod (modinfo) zstd xz-utils gcc (the sleeper,
#              the L1's kvm-key-holder)
#   small kernel: linux-source-6.1 make gcc flex bison bc perl libssl-dev libelf-dev
#   stock kernels: apt-get download + dpkg-deb (apt, dpkg: always present), file, lz4
#   reference guest and tests: qemu-system-x86 socat util-linux (setpriv)
#   KVM host (images/kvm-host.sh, an L1 under QEMU/TCG): qemu-system-x86 (its
#     virtio-9p), util-linux (setpriv), coreutils (timeout), busybox-static, kmod, xz-utils
#   host inspectors the shadow tests run (Tests/EndToEndTests/ShadowToolTable.swift):
#     procps (ps top pgrep pkill pmap pwdx w free vmstat sysctl uptime kill) sysvinit-utils (pidof)
#     psmisc (pstree killall) net-tools (netstat route arp ifconfig) iproute2 (ip ss)
#     coreutils findutils lsof util-linux (findmnt lscpu lsblk dmesg) libc-bin (getent getconf)
#     pciutils (lspci)
#   the bench's tools copied into initramfs-bench-* (images/bench-tools.sh): from the
#     packages above, kmod (lsmod) and coreutils (date, the timer)
APT_PACKAGES := \
	libcapstone-dev libelf-dev pkg-config \
	binutils git ca-certificates libc6-dev libedit2 libgcc-12-dev libncurses-dev \
	libpython3-dev libsqlite3-0 libstdc++-12-dev libxml2-dev libz3-dev tzdata unzip zlib1g-dev \
	busybox-static cpio gzip kmod zstd xz-utils lz4 file \
	linux-source-6.1 make gcc flex bison bc perl libssl-dev \
	qemu-system-x86 socat util-linux \
	procps psmisc net-tools iproute2 coreutils findutils lsof libc-bin sysvinit-utils pciutils

all: build

build:
	$(SWIFT) build -c release

images:
	nice $(MAKE) -C images

# The tests are XCTest; without Swift Testing's empty run, XCTest's summary
# ("Executed N tests, with ... failures") is the closing line CI reads.
test: images
	$(SWIFT) test --disable-swift-testing

# Boots the small kernel with the shell initramfs, ending at the guest's
# shell (swvmm-guest#; Ctrl-A x quits). On a host without hardware
# virtualization (no vmx/svm flag: its KVM cannot boot Linux) the same
# command runs in the KVM host (images/kvm-host.sh): a QEMU/TCG L1 with
# emulated AMD SVM, the terminal passed through to swvmm in it.
RUN_KERNEL ?= bzImage-tiny
run: $(if $(filter .build/release/swvmm,$(SWVMM)),build) images
	images/kvm-host.sh --interactive -- $(SWVMM) --kernel $(IMAGES)/$(RUN_KERNEL) --initrd $(IMAGES)/initramfs.cpio.gz

# Only the KVM host's L1 initramfs (make images builds it too).
kvm-host-image:
	nice $(MAKE) -C images kvm-host

bench: build
	$(SWVMM) bench

# swvmm against QEMU microvm to the same /init marker (needs hardware KVM: the KVM host gives it one).
bench-init: build images
	images/kvm-host.sh --timeout 1800 -- $(SWVMM) bench init

# `swvmm bench shadow --vm` on Debian 6.1 and 6.12 booted by swvmm with
# --shadow, in the KVM host; results under $(BENCH_OUT)/SERIES/.
BENCH_OUT ?= bench-out
bench-shadow-vm: build images
	mkdir -p $(BENCH_OUT)
	images/kvm-host.sh --timeout 3600 --scratch $(abspath $(BENCH_OUT)) -- env SWVMM=$(abspath $(SWVMM)) images/bench-native-shadow.sh $(abspath $(BENCH_OUT)) 6.1 6.12

# `swvmm bench shadow --gdb` on a Debian 6.1 and a 6.12 reference guest
# (QEMU/TCG, one at a time), native_s timed inside each guest through its
# console; results under $(BENCH_OUT)/gdb-SERIES/. BENCH_RUNS: runs per tool.
BENCH_RUNS ?= 3
bench-shadow-gdb: build images
	for series in 6.1 6.12; do \
		dir=$(abspath $(BENCH_OUT))/gdb-$$series; rm -rf $$dir; mkdir -p $$dir/guest; \
		images/reference-guest.sh --bench $$series $$dir/guest & guest=$$!; \
		for i in $$(seq 600); do grep -qs SWVMM-KNOWN-STATE-READY $$dir/guest/console.log && break; sleep 1; done; \
		$(SWVMM) bench shadow --gdb unix:$$dir/guest/gdb.sock --guest-console $$dir/guest/serial.sock \
			--runs $(BENCH_RUNS) --output $$dir > $$dir/table.md; status=$$?; \
		kill $$guest; wait $$guest 2>/dev/null; cat $$dir/table.md; [ $$status = 0 ] || exit $$status; \
	done

# Installing packages needs root: through sudo when run as a user.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

setup:
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APT_PACKAGES)

clean:
	rm -rf .build
	$(MAKE) -C images clean

# libFuzzer over the parsers of untrusted input (Fuzz/README.md): each target
# runs FUZZ_SECONDS from the committed seeds in Fuzz/corpus/TARGET (new inputs
# go to $(FUZZ_SCRATCH)/corpus/TARGET, crashes to $(FUZZ_SCRATCH)/artifacts/).
# CI runs a short pass: make fuzz FUZZ_SECONDS=10.
FUZZ_SCRATCH := .build-fuzz
FUZZ_BINARY := $(FUZZ_SCRATCH)/release/swvmm-fuzz
FUZZ_TARGETS := bzimage elf gdb-packets gdb-stop-registers target-xml syscall-marshalling control-messages
FUZZ_SECONDS ?= 60

fuzz-build:
	nice $(SWIFT) build -c release --scratch-path $(FUZZ_SCRATCH) --product swvmm-fuzz \
		-Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING

fuzz: fuzz-build
	mkdir -p $(FUZZ_SCRATCH)/artifacts
	for target in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_SCRATCH)/corpus/$$target; \
		echo "=== fuzz $$target ($(FUZZ_SECONDS) s)"; \
		log=$(FUZZ_SCRATCH)/$$target.log; \
		if ! SWVMM_FUZZ_TARGET=$$target nice $(FUZZ_BINARY) -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_SCRATCH)/artifacts/$$target- \
			$(FUZZ_SCRATCH)/corpus/$$target Fuzz/corpus/$$target > $$log 2>&1; then \
			tail -n 40 $$log; echo "fuzz target $$target failed: the input is in $(FUZZ_SCRATCH)/artifacts/"; exit 1; \
		fi; \
		grep -E '^stat::(number_of_executed_units|peak_rss_mb)|DONE' $$log || true; \
	done

.PHONY: all build images kvm-host-image test run bench bench-init bench-shadow-vm bench-shadow-gdb setup clean fuzz fuzz-build
