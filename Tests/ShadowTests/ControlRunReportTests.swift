import Glibc
import Guest
import Synchronization
import XCTest
@testable import Shadow

/// What the server's `finished` reports of a run, and `--stop-shadow` over
/// the socket: the real server and client, host tools run through a
/// LocalExecutor (no guest on this machine), wrapped so that it reports
/// measurements, an origin and a set-up time as a guest executor does.
final class ControlRunReportTests: XCTestCase {
    /// A LocalExecutor that counts like a guest executor: each call one
    /// `calls` and two `transitions`; `other vCPU interruptions` never moves.
    /// Its readings start far from zero so only a delta can match.
    final class MeasuredExecutor: GuestSyscallExecutor, @unchecked Sendable {
        private let local = LocalExecutor()
        private let made = Mutex(1000)
        var regionAddress: UInt64 { local.regionAddress }
        var regionSize: Int { local.regionSize }
        let origin: String? = "built shadow process pid 4242 on CPU 1 in 0.25s (borrowed pid 97)"
        let setUpDuration: Duration? = .milliseconds(250)

        func writeRegion(offset: Int, _ bytes: [UInt8]) throws { try local.writeRegion(offset: offset, bytes) }
        func readRegion(offset: Int, count: Int) throws -> [UInt8] { try local.readRegion(offset: offset, count: count) }
        func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 {
            made.withLock { $0 += 1 }
            return try local.syscall(number, arguments)
        }

        var measurements: [String: Int] {
            let calls = made.withLock { $0 }
            return [ExecutorMeasurement.calls: calls, ExecutorMeasurement.transitions: 2 * calls,
                    ExecutorMeasurement.otherVCPUInterruptions: 7]
        }
    }

    func testFinishedCarriesTheRunsCountersAndMeasurementDeltas() throws {
        let directory = try TemporarySocketDirectory()
        let executor = MeasuredExecutor()
        let server = try ControlHarness.server(at: directory.socketPath, executor: executor)
        defer { server.stop() }
        let run = ControlHarness.client(at: directory.socketPath, ["cat", "/proc/version"])
        XCTAssertNil(run.error, "\(String(describing: run.error))")
        XCTAssertEqual(run.exit, .exited(0))
        let report = try XCTUnwrap(run.report)
        let counters = report.counters
        XCTAssertGreaterThan(counters.redirected, 0, "cat's openat/read of /proc/version are the guest's")
        XCTAssertGreaterThan(counters.local, 0, "its loader's calls stay local")
        XCTAssertGreaterThanOrEqual(counters.notifications, counters.redirected + counters.local + counters.refused)
        XCTAssertGreaterThan(counters.redirectedNanoseconds, 0)
        XCTAssertLessThanOrEqual(counters.executorNanoseconds, counters.redirectedNanoseconds)
        // Deltas over this run only (the readings started at 1000 calls).
        let calls = try XCTUnwrap(report.measurementDeltas[ExecutorMeasurement.calls])
        XCTAssertGreaterThanOrEqual(calls, counters.redirected, "each redirected call is at least one executor call")
        XCTAssertLessThan(calls, 1000)
        XCTAssertEqual(report.measurementDeltas[ExecutorMeasurement.transitions], 2 * calls)
        XCTAssertEqual(report.measurementDeltas[ExecutorMeasurement.otherVCPUInterruptions], 0)
        XCTAssertEqual(report.origin, executor.origin)
        XCTAssertEqual(report.setUpNanoseconds, 250_000_000)
    }

    func testAnExecutorWithoutMeasurementsReportsCountersOnly() throws {
        let directory = try TemporarySocketDirectory()
        let server = try ControlHarness.server(at: directory.socketPath)
        defer { server.stop() }
        let run = ControlHarness.client(at: directory.socketPath, ["uname", "-r"])
        let report = try XCTUnwrap(run.report, "\(String(describing: run.error))")
        XCTAssertGreaterThan(report.counters.redirected, 0)
        XCTAssertEqual(report.measurementDeltas, [:])
        XCTAssertNil(report.origin)
        XCTAssertNil(report.setUpNanoseconds)
    }

    func testStopShadowOverTheSocketCallsTheProvidersHook() throws {
        let directory = try TemporarySocketDirectory()
        let stops = Mutex(0)
        let server = try ControlHarness.server(at: directory.socketPath, stopShadow: {
            let count = stops.withLock { count in
                count += 1
                return count
            }
            return "ended shadow process \(count)"
        })
        defer { server.stop() }
        let client = try ShadowControlClient(socketPath: directory.socketPath)
        XCTAssertEqual(try client.stopShadow(), ["swvmm: ended shadow process 1"])
        XCTAssertEqual(try client.stopShadow(), ["swvmm: ended shadow process 2"])
        XCTAssertEqual(stops.withLock { $0 }, 2)
        // A run after it is served as usual.
        XCTAssertEqual(ControlHarness.client(at: directory.socketPath, ["true"]).exit, .exited(0))
    }

    func testStopShadowWithoutAHookOrWithAFailingOneIsRefused() throws {
        let directory = try TemporarySocketDirectory()
        let server = try ControlHarness.server(at: directory.socketPath)
        let client = try ShadowControlClient(socketPath: directory.socketPath)
        XCTAssertThrowsError(try client.stopShadow()) { error in
            guard case let .refused(_, reason)? = error as? ControlError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("cannot end its shadow process"), reason)
        }
        server.stop()

        let failing = try ControlHarness.server(at: directory.socketPath, stopShadow: {
            throw ShadowError.guestGone(during: "a test's stop")
        })
        defer { failing.stop() }
        XCTAssertThrowsError(try client.stopShadow()) { error in
            guard case let .refused(_, reason)? = error as? ControlError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("a test's stop"), reason)
        }
    }

    func testTheGoAheadIsTimed() throws {
        let directory = try TemporarySocketDirectory()
        let server = try ControlHarness.server(at: directory.socketPath, provider: {
            usleep(200_000)
            return LocalExecutor()
        })
        defer { server.stop() }
        let client = try ShadowControlClient(socketPath: directory.socketPath)
        let result = try client.run(request: InspectorRequest(command: "true"), arguments: ["true"],
                                    environment: SupervisorHarness.environment, diagnostic: { _ in })
        XCTAssertEqual(result.exit, .exited(0))
        XCTAssertGreaterThanOrEqual(result.goAhead, .milliseconds(200), "the provider's time is in the wait for the go-ahead")
    }
}
