import Foundation
import XCTest

/// images/kvm-host.sh itself: what a command gets there and what comes back,
/// and how the KVM host reports its own failures (status 125, distinct from
/// any status of the command). The error-path tests force the L1 (--l1) so
/// they test it on every host.
final class KVMHostTests: XCTestCase {
    override func setUpWithError() throws {
        try KVMHost.requireAvailable()
    }

    /// One run checks the command's side: hardware-assisted /dev/kvm, the
    /// caller's working directory and environment, stdout and stderr apart,
    /// files written to the scratch directory, and its non-zero status.
    func testCommandRunsOnKVMAndItsStatusOutputAndFilesComeBack() throws {
        let value = "two words, 'quotes' and $dollar"
        let result = try KVMHost.runAllowingFailure(batch: """
            echo "cwd=$(pwd)"
            echo "value=$KVM_HOST_TEST_VALUE"
            [ -c /dev/kvm ] && echo "kvm=present"
            grep -qwE 'vmx|svm' /proc/cpuinfo && echo "cpu=hardware-virtualization"
            echo "to stderr" >&2
            printf 'result file\\n' > "$KVM_HOST_SCRATCH/result.txt"
            exit 7
            """, timeout: 300, environment: ["KVM_HOST_TEST_VALUE": value])
        XCTAssertEqual(result.status, 7, result.summary)
        XCTAssertEqual(result.stdout, """
            cwd=\(Swvmm.packageRoot.path)
            value=\(value)
            kvm=present
            cpu=hardware-virtualization

            """, result.summary)
        XCTAssertTrue(result.stderr.contains("to stderr"), result.summary)
        XCTAssertFalse(result.stdout.contains("to stderr"), result.summary)
        XCTAssertEqual(result.text("result.txt"), "result file\n", result.summary)
        print("KVMHostTests: a trivial command took \(String(format: "%.1f", result.seconds)) s")
    }

    /// kvm_amd not loaded in the L1: no /dev/kvm, said in one line, status 125.
    func testMissingDevKVMInTheL1IsReportedClearly() throws {
        let result = try KVMHost.runAllowingFailure(batch: "echo command-ran", timeout: 300,
                                                    environment: ["KVM_HOST_SKIP_KVM": "1"], options: ["--l1"])
        XCTAssertEqual(result.status, KVMHost.l1FailedStatus, result.summary)
        XCTAssertTrue(result.stderr.contains("kvm-host: error: /dev/kvm is missing in the L1: kvm_amd did not load"), result.summary)
        XCTAssertFalse(result.stdout.contains("command-ran"), result.summary)
        XCTAssertFalse(result.stderr.contains("retrying"), "a missing /dev/kvm is not a flaky boot\n\(result.summary)")
    }

    func testMissingL1KernelIsReportedClearly() throws {
        let result = try KVMHost.runAllowingFailure(batch: "echo command-ran", timeout: 60,
                                                    environment: ["KVM_HOST_KERNEL": "/nonexistent/bzImage"], options: ["--l1"])
        XCTAssertEqual(result.status, KVMHost.l1FailedStatus, result.summary)
        XCTAssertEqual(result.stderr, "kvm-host: error: L1 kernel /nonexistent/bzImage missing: run 'make images'\n", result.summary)
        XCTAssertEqual(result.stdout, "")
    }

    /// An L1 that ends before its init is ready (here: a "kernel" QEMU cannot
    /// load) is retried once, then reported as the KVM host's failure.
    func testL1ThatDiesBeforeReadyIsRetriedOnceThenReported() throws {
        let directory = try ScratchDirectory()
        let notAKernel = try directory.file("not-a-kernel", Array(repeating: 0x5a, count: 4096))
        let result = try KVMHost.runAllowingFailure(batch: "echo command-ran", timeout: 120,
                                                    environment: ["KVM_HOST_KERNEL": notAKernel], options: ["--l1"])
        XCTAssertEqual(result.status, KVMHost.l1FailedStatus, result.summary)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.filter { $0.contains("the L1 ended before it was ready") && $0.contains("retrying once") }.count, 1,
                       result.summary)
        XCTAssertEqual(lines.filter { $0.contains("kvm-host: error: the L1 failed to boot twice") }.count, 1, result.summary)
        XCTAssertFalse(result.stdout.contains("command-ran"), result.summary)
    }

    /// The timeout kills QEMU, says so, and leaves no process behind.
    func testTimeoutKillsTheL1() throws {
        let marker = "kvmhost-timeout-\(UUID().uuidString.prefix(8))"
        let result = try KVMHost.runAllowingFailure(batch: "sleep 600 # \(marker)", timeout: 30, options: ["--l1"])
        XCTAssertEqual(result.status, KVMHost.timedOutStatus, result.summary)
        XCTAssertTrue(result.stderr.contains("kvm-host: timed out after 30 s; QEMU killed"), result.summary)
        XCTAssertLessThan(result.seconds, 50, result.summary)
        XCTAssertEqual(KVMHost.processes(mentioning: result.scratch), [], "QEMU or a helper outlived kvm-host.sh")
    }
}
