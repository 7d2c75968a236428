import Foundation
import VMM
import XCTest

/// Boots to the initramfs's /init, which prints SWVMM-INIT-OK and resets the
/// machine (`swvmm.mode=reboot` with `reboot=k`), so swvmm exits 0. Needs
/// hardware-assisted KVM: runs through the KVM host (images/kvm-host.sh),
/// directly on a host with VT-x/AMD-V, else in a QEMU/TCG L1 with emulated
/// SVM. All boots of the class run in one batch, one L1 boot.
final class HardwareBootTests: XCTestCase {
    /// One boot of the batch. Add a line here, then a test that reads its result.
    struct Boot {
        var name: String
        var kernel: String
        var initrds: [String]  // the first one present in images/out
        var cpus: Int
        var release: String  // the images/out file naming the kernel release
        var memory = "512M"
    }

    static let boots: [Boot] = [
        Boot(name: "tiny", kernel: "bzImage-tiny", initrds: ["initramfs.cpio.gz"], cpus: 1, release: "release-tiny"),
        Boot(name: "debian-6.12", kernel: "bzImage-6.12", initrds: ["initramfs-6.12.cpio.gz", "initramfs.cpio.gz"], cpus: 2,
             release: "release-6.12"),
    ]

    /// The batch's outcome, shared by the tests: run once, on first use.
    private struct Outcome {
        var batch: SwvmmBatch
        var tokens: [String: String]
        var commandLines: [String: String]
        var missingImage: String?
        var result: Result<KVMHost.Result, Error>
    }

    nonisolated(unsafe) private static var outcome: Outcome?

    private static func runBatchOnce() -> Outcome {
        if let outcome { return outcome }
        var batch = SwvmmBatch()
        var tokens: [String: String] = [:], commandLines: [String: String] = [:]
        var missing: String?
        for boot in boots {
            let images = Swvmm.imagesDirectory
            let kernel = images.appendingPathComponent(boot.kernel).path
            guard FileManager.default.isReadableFile(atPath: kernel),
                  let initrd = boot.initrds.map({ images.appendingPathComponent($0).path })
                      .first(where: { FileManager.default.isReadableFile(atPath: $0) }) else {
                missing = missing ?? "\(boot.kernel) or \(boot.initrds.joined(separator: "/"))"
                continue
            }
            let token = UUID().uuidString.prefix(8).lowercased()
            let commandLine = "console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nomux i8042.dumbkbd swvmm.mode=reboot swvmm.testtoken=\(token)"
            tokens[boot.name] = token
            commandLines[boot.name] = commandLine
            batch.add(boot.name, ["--kernel", kernel, "--initrd", initrd, "--cpus", "\(boot.cpus)", "--memory", boot.memory,
                                  "--cmdline", commandLine])
        }
        let result: Result<KVMHost.Result, Error>
        if batch.runs.isEmpty {
            result = .failure(XCTSkip("guest images missing from images/out: run `make images`"))
        } else {
            do {
                try Swvmm.requireBinary()
                result = .success(try KVMHost.run(batch: batch.script, timeout: 900))
            } catch {
                result = .failure(error)
            }
        }
        outcome = Outcome(batch: batch, tokens: tokens, commandLines: commandLines, missingImage: missing, result: result)
        return outcome!
    }

    override func setUpWithError() throws {
        try Swvmm.requireBinary()
        try KVMHost.requireAvailable()
    }

    func testTinyBzImageBootsToInit() throws {
        let result = try bootResult("tiny")
        XCTAssertTrue(result.stdout.contains("Linux version"), result.summary)
    }

    func testDebian612BringsUpTwoCPUs() throws {
        let result = try bootResult("debian-6.12")
        XCTAssertTrue(KernelLog(serialOutput: result.stdout).contains("smp: Brought up 1 node, 2 CPUs"), result.summary)
    }

    /// Boot `name`'s result, with the checks every boot gets: swvmm ended by
    /// itself with status 0, /init reported the kernel's release, and the
    /// guest saw the exact command line, with this run's random token.
    private func bootResult(_ name: String) throws -> Swvmm.Result {
        let outcome = Self.runBatchOnce()
        guard let boot = Self.boots.first(where: { $0.name == name }) else { throw KVMHost.Failure(description: "no boot \(name)") }
        guard let commandLine = outcome.commandLines[name], let token = outcome.tokens[name] else {
            throw XCTSkip("guest image \(outcome.missingImage ?? name) is missing from images/out: run `make images`")
        }
        let batch = try outcome.result.get()
        let result = try outcome.batch.result(name, in: batch)
        Swvmm.assertEndedCleanly(result)
        XCTAssertEqual(result.status, ExitStatus.success, result.summary)
        XCTAssertTrue(result.stdout.contains("SWVMM-INIT-OK"), result.summary)
        if let release = try? String(contentsOf: Swvmm.imagesDirectory.appendingPathComponent(boot.release), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines), !release.isEmpty {
            XCTAssertTrue(result.stdout.contains("SWVMM-INIT-OK \(release)"), "/init should report release \(release)\n\(result.summary)")
        }
        XCTAssertEqual(KernelLog(serialOutput: result.stdout).first(after: "Command line: "), commandLine, result.summary)
        XCTAssertTrue(result.stdout.contains("swvmm.testtoken=\(token)"), result.summary)
        XCTAssertEqual(StartLine(stderr: result.stderr)?.cpus, boot.cpus, result.summary)
        XCTAssertTrue(result.stdout.contains("SWVMM-CPUS \(boot.cpus)"), "the guest should count \(boot.cpus) CPU(s)\n\(result.summary)")
        print("HardwareBootTests: \(name) took \(String(format: "%.1f", result.seconds)) s in a batch of \(String(format: "%.1f", batch.seconds)) s")
        return result
    }
}
