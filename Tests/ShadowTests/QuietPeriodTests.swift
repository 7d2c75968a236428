import Glibc
import XCTest
@testable import Shadow

/// The guest is held only while calls come: after the quiet period without
/// a trapped call the supervisor lets it run (the executor's `idle()`).
final class QuietPeriodTests: XCTestCase {
    /// A LocalExecutor that records when calls and idles happen (the guest's
    /// stand-in, as in the other supervisor tests).
    final class TimedExecutor: GuestSyscallExecutor {
        enum Event: Equatable { case call, idle }
        let inner = LocalExecutor()
        private(set) var events: [Event] = []
        var regionAddress: UInt64 { inner.regionAddress }
        var regionSize: Int { inner.regionSize }
        func writeRegion(offset: Int, _ bytes: [UInt8]) throws { try inner.writeRegion(offset: offset, bytes) }
        func readRegion(offset: Int, count: Int) throws -> [UInt8] { try inner.readRegion(offset: offset, count: count) }
        func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 {
            events.append(.call)
            return try inner.syscall(number, arguments)
        }
        func idle() throws { events.append(.idle) }
    }

    func testGuestIsLetRunWhileTheInspectorSleeps() throws {
        let executor = TimedExecutor()
        let (out, _) = try SupervisorHarness.shadow(["sh", "-c", "cat /proc/version >/dev/null; sleep 0.3; cat /proc/version >/dev/null"],
                                                    executor: executor)
        XCTAssertEqual(out.status, 0, out.stderr)
        // Two bursts of calls with an idle between them (the sleep), and none
        // while nothing was held.
        let events = executor.events
        let firstIdle = try XCTUnwrap(events.firstIndex(of: .idle), "\(events)")
        XCTAssertTrue(events[..<firstIdle].allSatisfy { $0 == .call })
        XCTAssertTrue(events[firstIdle...].contains(.call), "a second burst after the guest was let run: \(events)")
        for (a, b) in zip(events, events.dropFirst()) { XCTAssertFalse(a == .idle && b == .idle, "idle twice in a row: \(events)") }
    }

    /// Notifications that are no guest call (here: local opens, thousands of
    /// them, far longer than the quiet period) do not hold the guest.
    func testLocalCallsDoNotHoldTheGuest() throws {
        let executor = TimedExecutor()
        let script = "cat /proc/version >/dev/null; i=0; while [ $i -lt 20000 ]; do : </dev/null; i=$((i + 1)); done; cat /proc/version >/dev/null"
        let (out, supervisor) = try SupervisorHarness.shadow(["sh", "-c", script], executor: executor)
        XCTAssertEqual(out.status, 0, out.stderr)
        XCTAssertGreaterThan(supervisor.counters.local, 20000, "each open of /dev/null was a notification kept local")
        let events = executor.events
        let firstIdle = try XCTUnwrap(events.firstIndex(of: .idle), "\(events)")
        XCTAssertTrue(events[firstIdle...].contains(.call), "the second cat's calls came after the guest was let run: \(events)")
    }
}
