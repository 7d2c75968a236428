import Glibc
import XCTest
@testable import Shadow

/// Real host tools through the real supervisor (seccomp user notification,
/// ADDFD, process_vm_readv/writev). The guest executor is the one stand-in:
/// a LocalExecutor runs the redirected calls on this host, so each tool's
/// output must equal running it directly.
final class SupervisorLiveTests: XCTestCase {
    func testCatProcVersion() throws {
        let (shadowed, supervisor) = try SupervisorHarness.shadow(["cat", "/proc/version"], configuration: SupervisorConfiguration(verbose: true))
        let direct = try SupervisorHarness.direct(["cat", "/proc/version"])
        XCTAssertEqual(shadowed.status, 0, shadowed.stderr)
        XCTAssertEqual(shadowed.stdout, direct.stdout)
        let c = supervisor.counters
        XCTAssertGreaterThan(c.redirected, 0)
        XCTAssertGreaterThan(c.local, 0)
        XCTAssertEqual(c.byName["openat"] ?? 0 > 0, true, "\(c.byName)")
        XCTAssertEqual(supervisor.openGuestFds, 0)
    }
}
