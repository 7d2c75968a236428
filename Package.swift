// swift-tools-version:6.0
//
// swvmm: a minimal hypervisor on raw /dev/kvm ioctls, and shadow-context
// introspection of its guests (see ../shared/DESIGN.md and docs/).
import PackageDescription

let package = Package(
    name: "swvmm",
    products: [
        .executable(name: "swvmm", targets: ["swvmm"]),
        .library(name: "VMM", targets: ["VMM"]),
        .library(name: "Shadow", targets: ["Shadow"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // C shims: linux/kvm.h constants and the ioctl entry points Swift cannot
        // import directly (function-like macros, variadic ioctl).
        .target(name: "CKVM"),
        // Capstone's header only: the library is dlopen'ed on first use (see
        // Guest/CapstoneLibrary.swift), so no pkg-config (its -lcapstone would
        // put it back into the executable's DT_NEEDED).
        .systemLibrary(name: "CCapstone", providers: [.apt(["libcapstone-dev"])]),
        .systemLibrary(name: "CLibELF", pkgConfig: "libelf",
                       providers: [.apt(["libelf-dev"])]),

        // Seeing guest memory without guest symbols (no dependency on Shadow).
        .target(name: "Guest", dependencies: ["CCapstone", "CLibELF"]),
        // The hypervisor.
        .target(name: "VMM", dependencies: [
            "CKVM", "Guest",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // A VM that runs a few bytes of code: the micro-guest tests and `swvmm bench`'s exit rate.
        .target(name: "MicroVM", dependencies: ["VMM", "CKVM", "Guest"]),
        // Host-side C for shadow context: seccomp user notification, fork/exec with a filter.
        .target(name: "CShadow"),
        // Shadow-context introspection, above the Target protocol.
        .target(name: "Shadow", dependencies: ["Guest", "CShadow"]),
        // A Shadow Target over the GDB remote serial protocol (QEMU's gdbstub).
        .target(name: "GDBRemote", dependencies: ["Shadow", "Guest"]),
        // Shadow context on swvmm's own machine: the dedicated vCPU and its syscall-entry trap.
        .target(name: "KVMShadow", dependencies: ["VMM", "Guest", "CKVM", "Shadow"]),
        // The command line.
        .executableTarget(name: "swvmm", dependencies: [
            "VMM", "MicroVM", "KVMShadow", "Shadow", "GDBRemote", "Guest",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // libFuzzer targets over the parsers of untrusted input (`make fuzz`; Fuzz/README.md).
        // Plainly built, a replay tool for the committed corpus.
        .executableTarget(name: "swvmm-fuzz", dependencies: ["VMM", "Guest", "GDBRemote", "Shadow"],
                          path: "Fuzz", exclude: ["corpus", "README.md"]),

        // The RSS baseline for `swvmm bench boot`: a Swift hello-world.
        .executableTarget(name: "swvmm-hello-baseline", path: "Sources/HelloBaseline"),

        .testTarget(name: "VMMTests", dependencies: ["VMM", "MicroVM", "Guest", "CKVM", "KVMShadow", "Shadow"]),
        .testTarget(name: "GuestTests", dependencies: ["Guest"]),
        .testTarget(name: "ShadowTests", dependencies: ["Shadow", "GDBRemote", "Guest"]),
        // The GDB remote protocol without a guest: packets, a fake peer, target descriptions.
        .testTarget(name: "GDBRemoteTests", dependencies: ["GDBRemote", "Shadow", "Guest"]),
        // Runs the built swvmm binary and reference guests (QEMU/TCG) end to end.
        .testTarget(name: "EndToEndTests", dependencies: ["swvmm", "Guest", "Shadow", "GDBRemote", "VMM"],
                    exclude: ["Support/kvm-host-bridge.sh"]),
    ],
    swiftLanguageModes: [.v6]
)
