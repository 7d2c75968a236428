import Foundation
import Glibc
import GDBRemote
import XCTest
@testable import Shadow

/// An executor whose target died: the stub closed its connection, so every
/// access to S fails the way `GDBRemoteTarget` then fails (a stand-in,
/// because a real stub cannot be made to die at a chosen call).
final class DeadTargetExecutor: GuestSyscallExecutor {
    static let failure = GDBRemoteError.broken(by: .closed(while: "waiting for a stop reply"))
    let regionAddress: UInt64 = 0x7f00_0000_0000
    let regionSize = 8192
    func writeRegion(offset: Int, _ bytes: [UInt8]) throws { throw Self.failure }
    func readRegion(offset: Int, count: Int) throws -> [UInt8] { throw Self.failure }
    func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 { throw Self.failure }
}

/// A target that dies mid-run ends the run: the inspector is killed and the
/// supervisor reports the failure, instead of answering EIO forever.
final class DeadTargetTests: XCTestCase {
    func testRegionFailureEndsTheRunInsteadOfAnsweringEIOForever() throws {
        let supervisor = Supervisor(executor: DeadTargetExecutor(),
                                    configuration: SupervisorConfiguration(diagnostic: { _ in }))
        // Kills a regression's endless loop so it fails instead of hanging.
        let watchdog = DispatchWorkItem { supervisor.terminateInspector() }
        DispatchQueue.global().asyncAfter(deadline: .now() + 8, execute: watchdog)
        defer { watchdog.cancel() }
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { close(null) }
        let start = Date()
        XCTAssertThrowsError(try supervisor.run(
            arguments: ["sh", "-c", "while :; do cat /proc/loadavg; sleep 0.05; done"],
            environment: SupervisorHarness.environment, stdio: [-1, null, null])) { error in
            guard case let SupervisorError.executor(message)? = error as? SupervisorError else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("the connection to the GDB stub is gone"), message)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "the run went on after the target died")
    }

    func testRedirectorRecordsARegionFailureAsTheExecutorFailing() throws {
        let redirector = SyscallRedirector(executor: DeadTargetExecutor(), policy: ShadowPolicy(), range: .standard)
        let answer = "/proc/loadavg".withCString { path in
            redirector.handle(SyscallRequest(number: LinuxABI.Syscall.openat,
                                             arguments: [UInt64(bitPattern: -100), UInt64(UInt(bitPattern: path)), UInt64(O_RDONLY), 0, 0, 0],
                                             pid: getpid()),
                              installer: RecordingInstaller()).reply
        }
        XCTAssertEqual(answer, .error(EIO))
        guard case .executor? = redirector.executorFailure else {
            return XCTFail("executorFailure: \(String(describing: redirector.executorFailure))")
        }
    }
}
