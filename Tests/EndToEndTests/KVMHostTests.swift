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

    /// The L1's kernel stays away from what multi-threaded TCG gets wrong now
    /// and then, each of which killed L1s: `cmpxchg16b` (booted with
    /// clearcpuid=cx16) and live text patching. A VM made and destroyed in the
    /// L1 patches none of its kernel's text, because kvm-key-holder keeps the
    /// keys that KVM flips switched on. A kprobe on jump_label_update counts
    /// the flips while swvmm runs a micro-guest that triple-faults at once;
    /// ending the holder afterwards must flip a key, or the probe saw nothing
    /// and proves nothing. Enabling the probe and that last flip are live
    /// patches too: an L1 lost to them is run once more.
    func testTheL1KernelAvoidsCmpxchg16bAndTextPatching() throws {
        try Swvmm.requireBinary()
        if KVMHost.runsDirectly {
            throw XCTSkip("this host has VT-x/AMD-V: the KVM host runs no TCG L1 here, and so no kvm-key-holder")
        }
        let kernel = try MicroKernel.tripleFault.writeInPackageTree(named: "e2e-kvmhost-triple-fault.elf")
        let result = try KVMHost.retryingL1Deaths("KVMHostTests", { try KVMHost.run(batch: """
            tracing=/sys/kernel/tracing
            mountpoint -q $tracing || mount -t tracefs nodev $tracing || exit 3
            echo 'p:swvmm_flip jump_label_update' >> $tracing/kprobe_events || exit 4
            echo 1 > $tracing/events/kprobes/swvmm_flip/enable
            flips() { grep -c ' swvmm_flip:' $tracing/trace; }
            grep -qw cx16 /proc/cpuinfo || echo "kernel-cx16=off"
            pgrep -x kvm-key-holder >/dev/null && echo "holder=running"
            \(shellQuoted(Swvmm.binary.path)) --kernel \(shellQuoted(kernel.path)) </dev/null >/dev/null 2>&1
            echo "swvmm=$?"
            sleep 2  # KVM defers its APIC keys' decrements by up to a second
            echo "flips with the holder=$(flips)"
            pkill -x kvm-key-holder
            sleep 2
            echo "flips after it ended=$(flips)"
            """, timeout: 300) }, died: { ($0 as? KVMHost.Failure)?.l1Died == true })
        XCTAssertEqual(result.status, 0, result.summary)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("kernel-cx16=off"), result.summary)
        XCTAssertTrue(lines.contains("holder=running"), result.summary)
        XCTAssertTrue(lines.contains("swvmm=2"), "the micro-guest's triple fault\n\(result.summary)")
        XCTAssertTrue(lines.contains("flips with the holder=0"), result.summary)
        let after = lines.first { $0.hasPrefix("flips after it ended=") }.flatMap { Int($0.split(separator: "=")[1]) }
        XCTAssertGreaterThan(after ?? 0, 0, "the probe never fired: it proves nothing\n\(result.summary)")
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
