import Foundation
import VMM
import XCTest

/// Boots the small kernel (vmlinux-tiny ELF) with the initramfs once, and checks
/// from its serial console that the kernel got exactly the boot swvmm built:
/// banner, command line, e820 map, MP table, console, memory size. Then checks
/// how the run ends on this host: the platform limit (no vmx/svm: status 3, a
/// plain-words report, the `int3` disassembled) or, with hardware
/// virtualization, /init's marker and a clean power-off.
final class LinuxEarlyBootTests: XCTestCase {
    static let memoryMiB: UInt64 = 384
    /// Two vCPUs: the kernel learns its CPUs only from swvmm's MP table.
    static let cpuCount = 2
    static let token = "e2e" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
    /// `swvmm.mode=reboot` with `reboot=k`: on hardware-virtualization hosts /init prints
    /// SWVMM-INIT-OK and resets through the i8042, which ends swvmm with status 0.
    static let commandLine = "console=ttyS0 reboot=k panic=-1 i8042.noaux swvmm.mode=reboot swvmm.testtoken=\(token)"

    private static let lock = NSLock()
    /// Guarded by `lock`.
    nonisolated(unsafe) private static var cached: Swvmm.Result?

    /// The one boot all tests here look at (run on first use, budget 60 s).
    func boot() throws -> Swvmm.Result {
        try Swvmm.requireBinaryAndKVM()
        let kernel = try Swvmm.image("vmlinux-tiny")
        let initrd = try Swvmm.image("initramfs.cpio.gz")
        Self.lock.lock()
        defer { Self.lock.unlock() }
        if let cached = Self.cached { return cached }
        let result = try Swvmm.run(["--kernel", kernel, "--initrd", initrd, "--memory", "\(Self.memoryMiB)M",
                                    "--cpus", "\(Self.cpuCount)", "--cmdline", Self.commandLine], timeout: 60)
        Self.cached = result
        return result
    }

    func testBootEndsWithinBudgetWithoutCrashingSwvmm() throws {
        let result = try boot()
        Swvmm.assertEndedCleanly(result)
        XCTAssertLessThan(result.seconds, 60, result.summary)
    }

    func testKernelBannerMatchesTheBuiltRelease() throws {
        let result = try boot()
        let log = KernelLog(serialOutput: result.stdout)
        let banner = try XCTUnwrap(log.first(after: "Linux version "), "no kernel banner on the serial console\n\(result.summary)")
        let releaseFile = Swvmm.imagesDirectory.appendingPathComponent("release-tiny")
        if let release = try? String(contentsOf: releaseFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
           !release.isEmpty {
            XCTAssertTrue(banner.hasPrefix(release + " "), "banner '\(banner)' is not release \(release)")
        }
    }

    func testKernelSawExactlyTheCommandLineSwvmmReported() throws {
        let result = try boot()
        let start = try XCTUnwrap(StartLine(stderr: result.stderr), "no start line on stderr\n\(result.summary)")
        XCTAssertEqual(start.memory, "\(Self.memoryMiB)M")
        XCTAssertEqual(start.cpus, Self.cpuCount)
        // Documented: the user's command line, plus `noxsave` on hosts without VT-x/AMD-V.
        let expected = HostPlatform.hasHardwareVirtualization ? Self.commandLine : Self.commandLine + " noxsave"
        XCTAssertEqual(start.commandLine, expected)

        let log = KernelLog(serialOutput: result.stdout)
        let seen = try XCTUnwrap(log.first(after: "Command line: "), "kernel printed no command line\n\(result.summary)")
        XCTAssertEqual(seen, start.commandLine, "the guest's command line differs from what swvmm reported")
        XCTAssertTrue(seen.split(separator: " ").contains("swvmm.testtoken=\(Self.token)"))
        XCTAssertEqual(log.first(after: "Kernel command line: "), start.commandLine)
    }

    func testKernelSawTheE820MapSwvmmBuilt() throws {
        let result = try boot()
        let log = KernelLog(serialOutput: result.stdout)
        let seen = log.all(after: "BIOS-e820: ")
        XCTAssertFalse(seen.isEmpty, "no BIOS-e820 lines\n\(result.summary)")

        // From the documented layout (<= 3 GiB): conventional RAM, EBDA..1 MiB reserved, RAM above 1 MiB.
        let size = Self.memoryMiB << 20
        let documented = [kernelFormat(0, 0x9_FC00, "usable"),
                          kernelFormat(0x9_FC00, 0x10_0000, "reserved"),
                          kernelFormat(0x10_0000, size, "usable")]
        XCTAssertEqual(seen, documented)

        // And from VMM's own builder, for the same size.
        let built = try E820Map.build(memoryRegions: GuestMemory.layout(size: size))
        XCTAssertEqual(seen, built.map { kernelFormat($0.address, $0.end, $0.type == .ram ? "usable" : "reserved") })
    }

    func testMPTableConsoleAndMemoryTotal() throws {
        let result = try boot()
        let log = KernelLog(serialOutput: result.stdout)
        XCTAssertTrue(log.contains("found SMP MP-table at [mem 0x0009fc00-"), result.summary)
        // One processor entry per vCPU, the first marked as the boot CPU (MP spec §4.3.1).
        XCTAssertTrue(log.messages.contains("Processor #0 (Bootup-CPU)"), result.summary)
        XCTAssertTrue(log.messages.contains("Processors: \(Self.cpuCount)"), result.summary)
        XCTAssertTrue(log.contains("smpboot: Allowing \(Self.cpuCount) CPUs"), result.summary)
        XCTAssertTrue(log.messages.contains("printk: console [ttyS0] enabled"), result.summary)

        // "Memory: 500208K/523896K available (...)": the second figure is the RAM the kernel
        // manages, which is the e820 usable RAM minus page 0 and the partial page below the EBDA.
        let memory = try XCTUnwrap(log.first(after: "Memory: "), result.summary)
        let total = try XCTUnwrap(memory.split(separator: " ").first?.split(separator: "/").last
            .flatMap { UInt64($0.dropLast()) }, "cannot read the total in 'Memory: \(memory)'")
        let usableKiB = (0x9_FC00 + (Self.memoryMiB << 20) - 0x10_0000) / 1024
        XCTAssertLessThanOrEqual(total, usableKiB)
        XCTAssertGreaterThanOrEqual(total, usableKiB - 8, "kernel manages \(total)K of \(usableKiB)K usable RAM")
    }

    func testRunEndsAsThisPlatformAllows() throws {
        let result = try boot()
        Swvmm.assertEndedCleanly(result)
        if HostPlatform.hasHardwareVirtualization {
            XCTAssertTrue(result.stdout.contains("SWVMM-INIT-OK"), result.summary)
            XCTAssertEqual(result.status, ExitStatus.success, result.summary)
            return
        }
        // PLATFORM.md: the emulated kernel stops at the int3 self-test after the FPU setup.
        XCTAssertEqual(result.status, 3, result.summary)
        XCTAssertTrue(KernelLog(serialOutput: result.stdout).contains("x86/fpu: x87 FPU will use FXSAVE"), result.summary)
        XCTAssertTrue(result.stderr.contains("This host's KVM has no hardware virtualization"), result.summary)
        XCTAssertTrue(result.stderr.contains("emulation failure"), result.summary)
        XCTAssertFalse(result.stdout.contains("SWVMM-INIT-OK"))

        // The report disassembles the instruction at rip: `cc  int3` at the rip it printed.
        let lines = result.stderrLines
        let ripText = try XCTUnwrap(lines.lazy.compactMap { line -> Substring? in
            guard let range = line.range(of: "rip=") else { return nil }
            return line[range.upperBound...].prefix(while: { $0.isHexDigit })
        }.first, "no rip in the report\n\(result.summary)")
        let rip = try XCTUnwrap(UInt64(ripText, radix: 16))
        let codeIndex = try XCTUnwrap(lines.firstIndex(of: "code at rip:"), result.summary)
        let first = lines[codeIndex + 1]
        XCTAssertTrue(first.contains("0x" + String(rip, radix: 16) + ":"), "first disassembled line '\(first)' is not at rip")
        let words = first.split(separator: " ")
        XCTAssertTrue(words.contains("cc") && words.contains("int3"), "expected `cc int3` at rip, got '\(first)'")
    }

    /// The kernel's e820 print format (arch/x86/kernel/e820.c): inclusive end.
    private func kernelFormat(_ start: UInt64, _ end: UInt64, _ type: String) -> String {
        "[mem 0x\(hex16(start))-0x\(hex16(end - 1))] \(type)"
    }

    private func hex16(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
}
