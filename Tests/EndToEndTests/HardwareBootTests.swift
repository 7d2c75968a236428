import Foundation
import VMM
import XCTest

/// Boots to the initramfs's /init, which prints SWVMM-INIT-OK and resets the
/// machine (`swvmm.mode=poweroff` with `reboot=k`), so swvmm exits 0. Needs
/// VT-x/AMD-V: without it KVM emulates kernel code and stops at `int3`.
final class HardwareBootTests: XCTestCase {
    override func setUpWithError() throws {
        guard HostPlatform.hasHardwareVirtualization else {
            throw XCTSkip("needs hardware virtualization (vmx/svm); this host's KVM emulates kernel code and stops at int3, see shared/PLATFORM.md")
        }
        try Swvmm.requireBinaryAndKVM()
    }

    func testTinyBzImageBootsToInit() throws {
        let result = try bootToInit(kernel: Swvmm.image("bzImage-tiny"), initrd: Swvmm.image("initramfs.cpio.gz"), cpus: 1,
                                    release: "release-tiny")
        XCTAssertTrue(result.stdout.contains("Linux version"), result.summary)
    }

    func testDebian612BringsUpTwoCPUs() throws {
        let initrd = try (try? Swvmm.image("initramfs-6.12.cpio.gz")) ?? Swvmm.image("initramfs.cpio.gz")
        let result = try bootToInit(kernel: Swvmm.image("bzImage-6.12"), initrd: initrd, cpus: 2, release: "release-6.12")
        let log = KernelLog(serialOutput: result.stdout)
        XCTAssertTrue(log.contains("smp: Brought up 1 node, 2 CPUs"), result.summary)
    }

    /// `release`: the file in images/out naming the kernel release; /init prints "SWVMM-INIT-OK <uname -r>".
    private func bootToInit(kernel: String, initrd: String, cpus: Int, release: String) throws -> Swvmm.Result {
        let token = UUID().uuidString.prefix(8).lowercased()
        let commandLine = "console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nomux i8042.dumbkbd swvmm.mode=poweroff swvmm.testtoken=\(token)"
        let result = try Swvmm.run(["--kernel", kernel, "--initrd", initrd, "--cpus", "\(cpus)", "--memory", "512M",
                                    "--cmdline", commandLine], timeout: 90)
        Swvmm.assertEndedCleanly(result)
        XCTAssertEqual(result.status, ExitStatus.success, result.summary)
        XCTAssertTrue(result.stdout.contains("SWVMM-INIT-OK"), result.summary)
        if let name = try? String(contentsOf: Swvmm.imagesDirectory.appendingPathComponent(release), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines), !name.isEmpty {
            XCTAssertTrue(result.stdout.contains("SWVMM-INIT-OK \(name)"), "/init should report release \(name)\n\(result.summary)")
        }
        XCTAssertEqual(KernelLog(serialOutput: result.stdout).first(after: "Command line: "), commandLine, result.summary)
        return result
    }
}
