import Glibc
import XCTest
@testable import Shadow

/// Numbers for the closing note (printed; only sanity-checked).
final class SupervisorBenchmarkTests: XCTestCase {
    func testNotificationRoundTrip() throws {
        let n = 20_000
        for sync in [false, true] {
            for answer in [SupervisorBenchmark.Answer.continueLocally, .value] {
                let r = try SupervisorBenchmark.roundTrip(calls: n, answer: answer, synchronousWakeUp: sync)
                print("round trip \(answer) sync=\(r.synchronousWakeUp): \(String(format: "%.2f", r.nanosecondsPerCall / 1000)) µs/call over \(n)")
                XCTAssertGreaterThan(r.nanosecondsPerCall, 0)
            }
        }
    }

    /// Host-side cost per redirected call with the LocalExecutor (executor time excluded).
    func testHostCostPerRedirectedCall() throws {
        for tool in [["cat", "/proc/version"], ["ps", "-e", "-o", "pid,comm"], ["ls", "/proc"], ["df"], ["free"]] {
            let start = monotonicNanoseconds()
            let (out, supervisor) = try SupervisorHarness.shadow(tool)
            let wall = Double(monotonicNanoseconds() - start) / 1e6
            XCTAssertEqual(out.status, 0, out.stderr)
            let c = supervisor.counters
            print("\(tool.joined(separator: " ")): notifications \(c.notifications) redirected \(c.redirected) local \(c.local) refused \(c.refused) host µs/redirected \(String(format: "%.2f", c.hostMicrosecondsPerRedirectedCall)) executor µs total \(c.executorNanoseconds / 1000) wall \(String(format: "%.1f", wall)) ms")
        }
    }
}
