import Foundation
import VMM
import XCTest

/// SIGTERM/SIGINT while a guest runs: swvmm stops every vCPU and exits
/// promptly with status 0 ("stopped by the user", `swvmm --help`), instead of
/// dying from the signal or hanging in KVM_RUN.
final class SignalTests: XCTestCase {
    func testSIGTERMStopsARunningGuestPromptly() throws {
        try checkStop(signal: SIGTERM, cpus: 1)
    }

    func testSIGINTStopsATwoCPUGuestPromptly() throws {
        try checkStop(signal: SIGINT, cpus: 2)
    }

    private func checkStop(signal: Int32, cpus: Int) throws {
        try Swvmm.requireBinaryAndKVM()
        let kernel = try Swvmm.image("vmlinux-tiny")
        let initrd = try Swvmm.image("initramfs.cpio.gz")
        let after = 2.0
        // The shell mode keeps a guest that reaches /init busy forever (its stdin is /dev/null).
        let result = try Swvmm.run(["--kernel", kernel, "--initrd", initrd, "--memory", "256M", "--cpus", "\(cpus)",
                                    "--cmdline", "console=ttyS0 reboot=k panic=-1 swvmm.mode=shell"], timeout: 30,
                                   signal: (signal, after))
        Swvmm.assertEndedCleanly(result)
        // The guest was still running when the signal came (it runs ~15 s here; elsewhere /init's shell waits).
        XCTAssertTrue(result.stderr.contains("swvmm: 256M RAM, \(cpus) vCPU(s)"), result.summary)
        XCTAssertEqual(result.status, ExitStatus.success, result.summary)
        XCTAssertGreaterThanOrEqual(result.seconds, after, "the guest ended before the signal\n\(result.summary)")
        XCTAssertLessThan(result.seconds, after + 3, "swvmm should stop within a few seconds of the signal\n\(result.summary)")
        XCTAssertFalse(result.stderr.contains("int3"), "the run should have been stopped before the platform limit")
    }
}
