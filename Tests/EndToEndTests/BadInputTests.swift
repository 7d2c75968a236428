import Foundation
import VMM
import XCTest

/// Inputs swvmm must refuse: one clear line on stderr naming the problem, a
/// non-zero status (1; 64 for usage errors), no guest output, no trap, fast.
final class BadInputTests: XCTestCase {
    private var scratch: ScratchDirectory!

    override func setUpWithError() throws {
        try Swvmm.requireBinaryAndKVM()
        scratch = try ScratchDirectory()
    }

    override func tearDown() {
        scratch = nil
    }

    // MARK: - Kernel files

    func testMissingKernelFile() throws {
        let path = scratch.url.appendingPathComponent("no-such-kernel").path
        try assertRejected(["--kernel", path], mentions: [path, String(cString: strerror(ENOENT))])
    }

    func testRandomBytesAreNeitherBzImageNorELF() throws {
        var bytes = (0..<100_000).map { _ in UInt8.random(in: 0...255) }
        bytes[0] = 0  // not "\x7FELF"
        bytes[0x202] = 0  // not "HdrS"
        let path = try scratch.file("random.bin", bytes)
        try assertRejected(["--kernel", path], mentions: ["not a Linux kernel image", "bzImage", "ELF"])
    }

    func testEmptyFile() throws {
        let path = try scratch.file("empty", [])
        try assertRejected(["--kernel", path], mentions: ["not a Linux kernel image"])
    }

    func testDirectoryAsKernel() throws {
        try assertRejected(["--kernel", scratch.url.path], mentions: [scratch.url.path, String(cString: strerror(EISDIR))])
    }

    func testTruncatedBzImage() throws {
        let full = try bytes(of: Swvmm.image("bzImage-tiny"))
        let path = try scratch.file("truncated", Array(full.prefix(64 << 10)))
        // boot.rst: the setup is (setup_sects + 1) sectors (setup_sects at 0x1F1),
        // the protected-mode kernel syssize 16-byte paragraphs (u32 at 0x1F4).
        let needed = (Int(full[0x1F1]) + 1) * 512 + Int(u32(full, at: 0x1F4)) * 16
        try assertRejected(["--kernel", path], mentions: ["truncated", "\(64 << 10)", "\(needed)"])
    }

    func testBootProtocolTooOld() throws {
        var image = try bytes(of: Swvmm.image("bzImage-tiny"))
        XCTAssertGreaterThanOrEqual(u16(image, at: 0x206), 0x020C, "the tiny kernel itself should be new enough")
        image[0x206] = 0x09  // version 2.09 (little-endian u16 at 0x206)
        image[0x207] = 0x02
        let path = try scratch.file("old-protocol", image)
        try assertRejected(["--kernel", path], mentions: ["2.09", "too old", "2.12"])
    }

    /// A relocatable kernel whose preferred address plus init_size passes 2^64:
    /// refused by both `run` and `image-info`, naming the fields, never trapping.
    func testPreferredAddressPlusInitSizeOverflow() throws {
        var image = try bytes(of: Swvmm.image("bzImage-tiny"))
        // boot.rst: kernel_alignment u32 at 0x230, relocatable_kernel u8 at 0x234,
        // pref_address u64 at 0x258, init_size u32 at 0x260 (all little-endian).
        image.replaceSubrange(0x230..<0x234, with: [0x00, 0x00, 0x20, 0x00])
        image[0x234] = 1
        image.replaceSubrange(0x258..<0x260, with: [0x00, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        image.replaceSubrange(0x260..<0x264, with: [0x00, 0x00, 0x00, 0x01])
        let path = try scratch.file("pref-overflow", image)
        try assertRejected(["--kernel", path], mentions: ["pref_address + init_size", "overflows"])
        try assertRejected(["image-info", path], mentions: ["pref_address + init_size", "overflows"])
    }

    func testELFForAnotherMachine() throws {
        let path = try scratch.file("aarch64.elf", MicroKernel.elfHeader(class: 2, machine: 183))  // EM_AARCH64
        try assertRejected(["--kernel", path], mentions: ["not x86-64", "machine 183"])
    }

    func testELF32() throws {
        let path = try scratch.file("i386.elf", MicroKernel.elfHeader(class: 1, machine: 3))  // ELFCLASS32, EM_386
        try assertRejected(["--kernel", path], mentions: ["not x86-64"])
    }

    /// A FIFO with no writer would block open(2) forever; it is refused at once,
    /// as kernel and as initrd, with the stop signals never blocked first.
    func testFIFOAsKernelOrInitrdIsRefusedAtOnce() throws {
        let fifo = scratch.url.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0, String(cString: strerror(errno)))
        try assertRejected(["--kernel", fifo], mentions: [fifo, "FIFO", "regular file"])
        try assertRejected(["--kernel", Swvmm.image("bzImage-tiny"), "--initrd", fifo],
                           mentions: [fifo, "FIFO", "regular file"])
    }

    func testCharacterDeviceAsInitrdIsRefused() throws {
        try assertRejected(["--kernel", Swvmm.image("bzImage-tiny"), "--initrd", "/dev/zero"],
                           mentions: ["/dev/zero", "character device", "regular file"])
    }

    func testEmptyInitrdIsRefused() throws {
        let path = try scratch.file("empty-initrd", [])
        try assertRejected(["--kernel", Swvmm.image("bzImage-tiny"), "--initrd", path],
                           mentions: [path, "empty"])
    }

    // MARK: - Initrd, memory, CPUs, command line

    /// "-1" is a bad value, reported as such, not as a missing one.
    func testNegativeMemoryAndCPUsAreBadValuesNotMissingOnes() throws {
        try assertRejected(["--kernel", Swvmm.image("bzImage-tiny"), "--memory", "-1"],
                           status: ExitStatus.usage, mentions: ["-1", "--memory"])
        try assertRejected(["--kernel", Swvmm.image("bzImage-tiny"), "--cpus", "-1"], mentions: ["--cpus -1", "out of range"])
    }

    func testMissingInitrdFile() throws {
        let path = scratch.url.appendingPathComponent("no-such-initrd").path
        try assertRejected(["--kernel", Swvmm.image("bzImage-tiny"), "--initrd", path],
                           mentions: [path, String(cString: strerror(ENOENT))])
    }

    func testInitrdThatDoesNotFit() throws {
        let path = try scratch.file("big-initrd", [UInt8](repeating: 0, count: 40 << 20))
        try assertRejected(["--kernel", Swvmm.image("bzImage-tiny"), "--initrd", path, "--memory", "32M"],
                           mentions: ["initrd", "40 MiB", "does not fit"])
    }

    func testZeroMemory() throws {
        try assertRejected(["--kernel", Swvmm.image("bzImage-tiny"), "--memory", "0"], mentions: ["--memory", "too small"])
    }

    func testMoreMemoryThanTheHost() throws {
        let hostKiB = try hostMemoryKiB()
        try XCTSkipIf(hostKiB >= 1 << 30, "this host has 1 TiB of RAM or more")
        try assertRejected(["--kernel", Swvmm.image("bzImage-tiny"), "--memory", "1T"],
                           mentions: ["--memory", "more than this host", MemorySize(bytes: hostKiB * 1024).description])
    }

    func testMemoryThatIsNotASize() throws {
        try assertRejected(["--kernel", Swvmm.image("bzImage-tiny"), "--memory", "banana"],
                           status: ExitStatus.usage, mentions: ["banana", "--memory"])
    }

    func testZeroCPUs() throws {
        try assertRejected(["--kernel", Swvmm.image("bzImage-tiny"), "--cpus", "0"], mentions: ["--cpus 0", "out of range"])
    }

    func testTooManyCPUs() throws {
        try assertRejected(["--kernel", Swvmm.image("bzImage-tiny"), "--cpus", "100000"],
                           mentions: ["--cpus 100000", "out of range"])
    }

    func testCommandLineLongerThanTheKernelAccepts() throws {
        let kernel = try Swvmm.image("bzImage-tiny")
        let limit = Int(u32(try bytes(of: kernel), at: 0x238))  // cmdline_size (boot.rst, protocol 2.06+)
        let info = try Swvmm.run(["image-info", kernel], timeout: 20)
        XCTAssertTrue(info.stdoutLines.contains(where: { $0.hasPrefix("command line size") && $0.hasSuffix(" \(limit)") }),
                      "image-info should report cmdline_size \(limit)\n\(info.summary)")

        let text = String(repeating: "x", count: 5000)
        // swvmm checks the command line the guest would get: plus " noxsave" without VT-x/AMD-V.
        let length = text.count + (HostPlatform.hasHardwareVirtualization ? 0 : " noxsave".count)
        try assertRejected(["--kernel", kernel, "--cmdline", text],
                           mentions: ["command line", "\(length) bytes", "at most \(limit)"])
    }

    /// A control socket serves shadow context, which only a VM run with --shadow has.
    func testAPISocketWithoutShadowIsAUsageError() throws {
        let socket = scratch.url.appendingPathComponent("vm.sock").path
        try assertRejected(["--kernel", Swvmm.image("bzImage-tiny"), "--api-socket", socket],
                           status: ExitStatus.usage, mentions: ["--api-socket needs --shadow"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: socket), "no socket made for a VM that never started")
    }

    func testMissingKernelOption() throws {
        try assertRejected([], status: ExitStatus.usage, mentions: ["Missing", "--kernel"])
        try assertRejected(["--memory", "512M"], status: ExitStatus.usage, mentions: ["Missing", "--kernel"])
    }

    // MARK: - Helpers

    /// Runs swvmm with `arguments` and checks the refusal: status, the message naming the
    /// problem (`mentions`), one line (status 1) or an "Error:" first line (usage), nothing on stdout.
    private func assertRejected(_ arguments: [String], status: Int32 = ExitStatus.failure, mentions: [String],
                                file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try Swvmm.run(arguments, timeout: 30)
        Swvmm.assertEndedCleanly(result, file: file, line: line)
        XCTAssertEqual(result.status, status, result.summary, file: file, line: line)
        XCTAssertEqual(result.stdout, "", "a refused run must not start the guest", file: file, line: line)
        XCTAssertLessThan(result.seconds, 10, "refusing bad input should be fast", file: file, line: line)
        let lines = result.stderrLines
        let message: String
        if status == ExitStatus.usage {
            message = lines.first ?? ""
            XCTAssertTrue(message.hasPrefix("Error: "), result.summary, file: file, line: line)
        } else {
            XCTAssertEqual(lines.count, 1, "expected exactly one line on stderr\n\(result.summary)", file: file, line: line)
            message = lines.first ?? ""
            XCTAssertTrue(message.hasPrefix("swvmm: "), result.summary, file: file, line: line)
        }
        for fragment in mentions {
            XCTAssertTrue(message.contains(fragment), "'\(message)' should mention '\(fragment)'", file: file, line: line)
        }
    }

    private func bytes(of path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    private func hostMemoryKiB() throws -> UInt64 {
        let meminfo = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
        let line = try XCTUnwrap(meminfo.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }))
        return try XCTUnwrap(line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) })
    }
}

func u16(_ bytes: [UInt8], at offset: Int) -> UInt16 {
    UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
}

func u32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
    (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << ($1 * 8) }
}

func u64(_ bytes: [UInt8], at offset: Int) -> UInt64 {
    (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << ($1 * 8) }
}
