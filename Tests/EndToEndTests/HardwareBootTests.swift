import Foundation
import VMM
import XCTest

/// swvmm's product path on hardware-assisted KVM: stock kernels to /init,
/// SMP, reset and ACPI power-off, memory above the 3 GiB hole, a triple
/// fault, SIGTERM, the shadow vCPU's syscall-entry trap, and the micro-guest
/// tests that need hardware KVM. Runs through the KVM host
/// (images/kvm-host.sh): directly on a host with VT-x/AMD-V, else in a
/// QEMU/TCG L1 with emulated SVM. Every run of the class is one batch, one L1 boot.
final class HardwareBootTests: XCTestCase {
    /// One guest boot of the batch. Add a line here, then a test that reads its result.
    struct Boot {
        var name: String
        var kernel: String
        var initrds: [String]  // the first one present in images/out
        var cpus: Int
        var release: String  // the images/out file naming the kernel release
        var memory = "512M"
        /// /init's `swvmm.mode`: reboot (i8042 reset), poweroff (ACPI S5), pinned-work (then poweroff).
        var mode = "reboot"
        /// `--shadow`: one more vCPU, kept for shadow context.
        var shadow = false
        /// What /init prints once the boot has done what the test needs: a
        /// guest that dies before it (multi-vCPU guests under the emulated
        /// KVM host are lost now and then, shared/PLATFORM.md) is booted once
        /// more (`SwvmmBatch.add(_:_:timeout:readyMarker:)`).
        var readyMarker = "SWVMM-INIT-OK"
        /// CPUs the guest sees.
        var guestCPUs: Int { cpus + (shadow ? 1 : 0) }
    }

    static let boots: [Boot] = [
        Boot(name: "tiny", kernel: "bzImage-tiny", initrds: ["initramfs.cpio.gz"], cpus: 1, release: "release-tiny"),
        Boot(name: "tiny-vmlinux", kernel: "vmlinux-tiny", initrds: ["initramfs.cpio.gz"], cpus: 2, release: "release-tiny"),
        Boot(name: "debian-6.1", kernel: "bzImage-6.1", initrds: ["initramfs-6.1.cpio.gz"], cpus: 4, release: "release-6.1",
             memory: "4G", mode: "poweroff"),
        Boot(name: "debian-6.12", kernel: "bzImage-6.12", initrds: ["initramfs-6.12.cpio.gz"], cpus: 2, release: "release-6.12"),
        Boot(name: "debian-6.12-shadow", kernel: "vmlinux-6.12", initrds: ["initramfs-6.12.cpio.gz"], cpus: 1,
             release: "release-6.12", mode: "pinned-work", shadow: true, readyMarker: "SWVMM-PINNED-WORK"),
    ]

    /// Boot-log messages that mean swvmm's tables, CPUID or devices look wrong
    /// to the guest. Each check fails a boot whose log has one.
    static let tableWarnings = [
        "[Firmware Bug]", "[Firmware Warn]", "MP-BIOS bug", "ACPI BIOS Error", "ACPI BIOS Warning", "ACPI Error",
        "ACPI Warning", "invalid e820", "e820: overlap", "TSC unstable", "as unstable", "CPUID", "inconsisten", "WARNING:",
    ]
    /// What the emulated-SVM KVM host causes by itself, each seen in the same
    /// words from QEMU microvm (`-accel kvm -cpu host`) booting the same kernel
    /// in the same L1: its KVM reports XSAVE sizes that do not match the state
    /// components (the kernel's warning, then its dump of CPUID leaf 0xD);
    /// under emulation the PIT calibration of a kernel without kvm-clock
    /// fails, and the TSCs of several vCPUs drift apart.
    /// Not excused on a host with VT-x/AMD-V.
    static let emulatedHostWarnings = [
        "XSAVE consistency problem", "WARNING: CPU: 0 PID: 0 at arch/x86/kernel/fpu/xstate.c", "CPUID[0d, ",
        "tsc: Marking TSC unstable due to could not calculate TSC khz", "tsc: Marking TSC unstable due to TSCs unsynchronized",
    ]

    /// The micro-guest test classes that need hardware KVM (they skip elsewhere).
    static let hardwareTestClasses = [
        "VMMTests.SyscallTrapTests", "VMMTests.VCPUControlTests", "VMMTests.MicroGuestComputeTests",
        "VMMTests.MicroGuestExitTests",
    ]

    /// The batch's outcome, shared by the tests: run once, on first use.
    private struct Outcome {
        var batch: SwvmmBatch
        var tokens: [String: String]
        var commandLines: [String: String]
        var missingImages: [String: String]
        var result: Result<KVMHost.Result, Error>
    }

    nonisolated(unsafe) private static var outcome: Outcome?
    private static let lock = NSLock()

    private static func commandLine(mode: String, token: String) -> String {
        "console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nomux i8042.dumbkbd swvmm.mode=\(mode) swvmm.testtoken=\(token)"
    }

    private static func runBatchOnce() -> Outcome {
        lock.lock()
        defer { lock.unlock() }
        if let outcome { return outcome }
        var batch = SwvmmBatch()
        var tokens: [String: String] = [:], commandLines: [String: String] = [:], missing: [String: String] = [:]
        let images = Swvmm.imagesDirectory
        for boot in boots {
            let kernel = images.appendingPathComponent(boot.kernel).path
            guard FileManager.default.isReadableFile(atPath: kernel),
                  let initrd = boot.initrds.map({ images.appendingPathComponent($0).path })
                      .first(where: { FileManager.default.isReadableFile(atPath: $0) }) else {
                missing[boot.name] = "\(boot.kernel) or \(boot.initrds.joined(separator: "/"))"
                continue
            }
            let token = UUID().uuidString.prefix(8).lowercased()
            let commandLine = commandLine(mode: boot.mode, token: String(token))
            tokens[boot.name] = String(token)
            commandLines[boot.name] = commandLine
            batch.add(boot.name, ["--kernel", kernel, "--initrd", initrd, "--cpus", "\(boot.cpus)", "--memory", boot.memory,
                                  "--cmdline", commandLine] + (boot.shadow ? ["--shadow"] : []),
                      timeout: 240, readyMarker: boot.readyMarker)
        }
        // A kernel that triple-faults: written where the L1 sees it (the package tree).
        if let tripleFault = try? MicroKernel.tripleFault.writeInPackageTree(named: "e2e-triple-fault.elf") {
            batch.add("triple-fault", ["--kernel", tripleFault.path])
        }
        let tiny = images.appendingPathComponent("bzImage-tiny").path, tinyInitrd = images.appendingPathComponent("initramfs.cpio.gz").path
        batch.add("sigterm", ["--kernel", tiny, "--initrd", tinyInitrd, "--cmdline", commandLine(mode: "shell", token: "sigterm")],
                  terminateAfter: "SWVMM-INIT-OK")
        batch.add("hardware-tests", command: [testBinary(), hardwareTestClasses.joined(separator: ",")])
        let result: Result<KVMHost.Result, Error>
        do {
            try Swvmm.requireBinary()
            // More than 3 GiB for a guest: the L1 gets 5 GiB.
            result = .success(try KVMHost.retryingL1Deaths("HardwareBootTests", {
                // A whole batch takes 6-9 minutes in CI; past 15 the L1 has hung.
                try KVMHost.run(batch: batch.script, memory: "5G", timeout: 900)
            }, died: { ($0 as? KVMHost.Failure)?.l1Died == true }))
        } catch {
            result = .failure(error)
        }
        outcome = Outcome(batch: batch, tokens: tokens, commandLines: commandLines, missingImages: missing, result: result)
        return outcome!
    }

    /// This test bundle's own executable (it runs the hardware micro-guest classes in the L1).
    private static func testBinary() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    override func setUpWithError() throws {
        try Swvmm.requireBinary()
        try KVMHost.requireAvailable()
    }

    func testTinyBzImageBootsToInit() throws {
        let result = try bootResult("tiny")
        XCTAssertTrue(result.stdout.contains("Linux version"), result.summary)
    }

    func testTinyVmlinuxBringsUpTwoCPUsFromTheMPTable() throws {
        let result = try bootResult("tiny-vmlinux")
        XCTAssertTrue(KernelLog(serialOutput: result.stdout).contains("smp: Brought up 1 node, 2 CPUs"), result.summary)
    }

    func testDebian61FourCPUsMemoryAboveTheHoleAndACPIPowerOff() throws {
        let result = try bootResult("debian-6.1")
        let log = KernelLog(serialOutput: result.stdout)
        XCTAssertTrue(log.contains("smp: Brought up 1 node, 4 CPUs"), result.summary)
        XCTAssertTrue(log.contains("ACPI: Using ACPI (MADT) for SMP configuration information"), result.summary)
        XCTAssertTrue(log.contains("BIOS-e820: [mem 0x0000000100000000-0x000000013fffffff] usable"),
                      "1 GiB of the 4 GiB above the 3-4 GiB hole\n\(result.summary)")
        XCTAssertTrue(log.contains("reboot: Power down"), result.summary)
        XCTAssertTrue(result.stderr.contains("ACPI power-off"), "swvmm ended on the guest's S5\n\(result.summary)")
    }

    func testDebian612BringsUpTwoCPUsAndResets() throws {
        let result = try bootResult("debian-6.12")
        XCTAssertTrue(KernelLog(serialOutput: result.stdout).contains("smp: Brought up 1 node, 2 CPUs"), result.summary)
        XCTAssertTrue(result.stderr.contains("i8042"), "swvmm ended on the guest's reset\n\(result.summary)")
    }

    /// `--shadow`: the guest gets one more CPU, isolated, and its system calls
    /// are trapped at syscall entry and let through; a workload pinned there
    /// runs correctly, and the other vCPU is never paused.
    func testShadowVCPUTrapsTheSystemCallsMadeOnItAndNothingElseStops() throws {
        let result = try bootResult("debian-6.12-shadow")
        let log = KernelLog(serialOutput: result.stdout)
        XCTAssertTrue(log.contains("isolcpus=1 nohz_full=1 rcu_nocbs=1 irqaffinity=0"), result.summary)
        // /init sums (CPU it ran on + 1) over 300 processes pinned to the last CPU.
        XCTAssertTrue(result.stdout.contains("SWVMM-PINNED-WORK cpu=1 result=600 expected=600"),
                      "every process of the workload ran on the shadow CPU, with correct results\n\(result.summary)")
        guard let report = result.stderr.split(separator: "\n").first(where: { $0.contains("shadow vCPU 1:") }) else {
            return XCTFail("no shadow vCPU report\n\(result.summary)")
        }
        let trapped = report.components(separatedBy: " system calls trapped").first?.split(separator: " ").last.flatMap { Int($0) }
        XCTAssertGreaterThan(trapped ?? 0, 1000, "the workload's system calls went through the trap\n\(report)")
        XCTAssertTrue(report.hasSuffix("pauses of the other vCPUs: 0"), String(report))
    }

    func testTripleFaultEndsWithStatus2AndAReport() throws {
        let batch = try Self.runBatchOnce().result.get()
        let result = try Self.runBatchOnce().batch.result("triple-fault", in: batch)
        Swvmm.assertEndedCleanly(result)
        XCTAssertEqual(result.status, ExitStatus.guestFailed, result.summary)
        XCTAssertTrue(result.stderr.contains("triple fault"), result.summary)
        // VT-x keeps the faulting state (the report disassembles the ud2); AMD SVM resets the vCPU first, and the report says so.
        XCTAssertTrue(result.stderr.contains("ud2") || result.stderr.contains("these are reset values"), result.summary)
    }

    func testSIGTERMWhileTheGuestRunsEndsWithStatus0AndNoStrays() throws {
        let batch = try Self.runBatchOnce().result.get()
        let result = try Self.runBatchOnce().batch.result("sigterm", in: batch)
        XCTAssertFalse(result.timedOut, result.summary)
        XCTAssertEqual(result.status, ExitStatus.success, result.summary)
        XCTAssertTrue(result.stderr.contains("stopped: signal"), result.summary)
        XCTAssertTrue(result.stdout.hasSuffix("swvmm-left=0\n"), "no swvmm left behind\n\(result.summary)")
    }

    func testMicroGuestsThatNeedHardwareKVMPassThere() throws {
        let batch = try Self.runBatchOnce().result.get()
        let result = try Self.runBatchOnce().batch.result("hardware-tests", in: batch)
        XCTAssertEqual(result.status, 0, result.summary)
        XCTAssertTrue(result.stdout.contains("with 0 failures"), result.summary)
        XCTAssertFalse(result.stdout.contains(" skipped"), "on hardware KVM none of them may skip\n\(result.summary)")
        XCTAssertTrue(result.stdout.contains("SyscallTrapTests"), result.summary)
    }

    func testNoBootLogShowsSwvmmsTablesOrCPUIDWrong() throws {
        let outcome = Self.runBatchOnce()
        let batch = try outcome.result.get()
        let excused = KVMHost.runsDirectly ? [] : Self.emulatedHostWarnings
        for boot in Self.boots where outcome.commandLines[boot.name] != nil {
            let result = try outcome.batch.result(boot.name, in: batch)
            let suspicious = KernelLog(serialOutput: result.stdout).messages.filter { message in
                Self.tableWarnings.contains { message.contains($0) } && !excused.contains { message.contains($0) }
            }
            XCTAssertEqual(suspicious, [], "\(boot.name): the guest complains about what swvmm gave it")
        }
    }

    /// Boot `name`'s result, with the checks every boot gets: swvmm ended by
    /// itself with status 0, /init reported the kernel's release and counted
    /// the CPUs, and the guest saw the command line swvmm printed, with this
    /// run's random token.
    private func bootResult(_ name: String) throws -> Swvmm.Result {
        let outcome = Self.runBatchOnce()
        guard let boot = Self.boots.first(where: { $0.name == name }) else { throw KVMHost.Failure(description: "no boot \(name)") }
        guard let commandLine = outcome.commandLines[name], let token = outcome.tokens[name] else {
            throw XCTSkip("guest image \(outcome.missingImages[name] ?? name) is missing from images/out: run `make images`")
        }
        let batch = try outcome.result.get()
        let result = try outcome.batch.result(name, in: batch)
        Swvmm.assertEndedCleanly(result)
        XCTAssertEqual(result.status, ExitStatus.success, result.summary)
        if let release = try? String(contentsOf: Swvmm.imagesDirectory.appendingPathComponent(boot.release), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines), !release.isEmpty {
            XCTAssertTrue(result.stdout.contains("SWVMM-INIT-OK \(release)"), "/init should report release \(release)\n\(result.summary)")
        }
        let start = StartLine(stderr: result.stderr)
        XCTAssertTrue(start?.commandLine.hasPrefix(commandLine) == true, result.summary)
        XCTAssertEqual(KernelLog(serialOutput: result.stdout).first(after: "Command line: "), start?.commandLine, result.summary)
        XCTAssertTrue(result.stdout.contains("swvmm.testtoken=\(token)"), result.summary)
        XCTAssertEqual(start?.cpus, boot.guestCPUs, result.summary)
        XCTAssertTrue(result.stdout.contains("SWVMM-CPUS \(boot.guestCPUs)"),
                      "the guest should count \(boot.guestCPUs) CPU(s)\n\(result.summary)")
        print("HardwareBootTests: \(name) took \(String(format: "%.1f", result.seconds)) s in a batch of \(String(format: "%.1f", batch.seconds)) s")
        return result
    }
}
