import Guest
import XCTest
@testable import Shadow

/// The control protocol's wire format: what goes out comes back the same,
/// and what a hostile or foreign peer sends is refused before it is used.
final class ControlMessageTests: XCTestCase {
    private func header(kind: UInt16, length: Int, version: UInt16 = ControlWire.version, magic: UInt32 = ControlWire.magic) -> [UInt8] {
        magic.littleEndianBytes() + version.littleEndianBytes() + kind.littleEndianBytes() + UInt32(length).littleEndianBytes()
    }

    private func assertViolation(_ bytes: [UInt8], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ControlMessage.decode(bytes), what, file: file, line: line) { error in
            guard case .protocolViolation? = error as? ControlError else {
                return XCTFail("\(what): \(error)", file: file, line: line)
            }
        }
    }

    func testEveryMessageComesBackAsSent() throws {
        let messages: [ControlMessage] = [
            .request(InspectorRequest(command: "ps", guestPaths: ["/srv/guest"], localPaths: ["/home/me", "/opt/é"],
                                      allowWrites: true, verbose: false)),
            .request(InspectorRequest(command: "")),
            .accepted,
            .ready(guestFdRange: .standard),
            .inspector(pid: 4242),
            .diagnostic("swvmm: refused sethostname"),
            .refused("no executor"),
            .finished(failure: nil, report: RunReport()),
            .finished(failure: "the guest went away", report: RunReport(counters: counters(notifications: 3, redirected: 2))),
            .finished(failure: nil, report: RunReport(
                counters: counters(notifications: 120, redirected: 80, local: 38, refused: 2, redirectedNanoseconds: 9_000_000,
                                   executorNanoseconds: 7_500_000), measurementDeltas: ["calls": 81, "transitions": 81, "other vCPU interruptions": 0, "é": -1],
                origin: "built shadow process pid 812 on CPU 1 in 0.24s (borrowed pid 97)", setUpNanoseconds: 240_000_000)),
            .finished(failure: nil, report: RunReport(counters: counters(redirected: 1), origin: "", setUpNanoseconds: 0)),
            .stopShadow,
        ]
        for message in messages {
            XCTAssertEqual(try ControlMessage.decode(try message.encoded()), message)
        }
    }

    func testLongTextsAreCutAtACharacterBoundary() throws {
        let long = String(repeating: "é", count: ControlWire.maximumTextBytes)
        guard case let .diagnostic(text) = try ControlMessage.decode(try ControlMessage.diagnostic(long).encoded()) else {
            return XCTFail("not a diagnostic")
        }
        XCTAssertEqual(text.utf8.count, ControlWire.maximumTextBytes)
        XCTAssertTrue(long.hasPrefix(text))
    }

    func testARequestOverTheLimitsIsNotSent() {
        let many = (0...ControlWire.maximumPaths).map { "/p\($0)" }
        XCTAssertThrowsError(try ControlMessage.request(InspectorRequest(command: "ls", guestPaths: many)).encoded())
        let long = "/" + String(repeating: "a", count: ControlWire.maximumPathBytes)
        XCTAssertThrowsError(try ControlMessage.request(InspectorRequest(command: "ls", localPaths: [long])).encoded())
    }

    func testForeignOrMalformedMessagesAreRefused() throws {
        let accepted = try ControlMessage.accepted.encoded()
        assertViolation([], "empty")
        assertViolation(Array(accepted.prefix(ControlWire.headerSize - 1)), "short header")
        assertViolation(header(kind: 2, length: 0, magic: 0x1234_5678), "wrong magic")
        assertViolation(header(kind: 99, length: 0), "unknown kind")
        assertViolation(header(kind: 2, length: 5), "length beyond the message")
        assertViolation(header(kind: 2, length: 1) + [0], "trailing bytes")
        let emptyReport = try finishedPayload(RunReport()).dropFirst(5)
        assertViolation(header(kind: 7, length: 5 + emptyReport.count) + [2, 0, 0, 0, 0] + emptyReport, "a flag that is neither 0 nor 1")
        assertViolation(header(kind: 7, length: 6 + emptyReport.count) + [0, 1, 0, 0, 0, 0x41] + emptyReport,
                        "a reason for a run that did not fail")
        assertViolation(header(kind: 7, length: 5) + [0, 0, 0, 0, 0], "a finished without its report")
        // A text claiming 4 GiB, and one just over the limit.
        assertViolation(header(kind: 5, length: 4) + [0xFF, 0xFF, 0xFF, 0xFF], "a huge text length")
        let over = UInt32(ControlWire.maximumTextBytes + 1)
        assertViolation(header(kind: 5, length: 4 + Int(over)) + over.littleEndianBytes() + [UInt8](repeating: 0x41, count: Int(over)),
                        "a text over the limit")
        assertViolation(header(kind: 5, length: 6) + [2, 0, 0, 0, 0xC3, 0x28], "invalid UTF-8")
        assertViolation(header(kind: 5, length: 5) + [1, 0, 0, 0, 0], "a NUL in a text")
        // A request whose path list claims a million entries.
        let list = UInt32(1_000_000).littleEndianBytes()
        assertViolation(header(kind: 1, length: 8) + [0, 0, 0, 0] + list, "a huge list count")
        assertViolation([UInt8](repeating: 0, count: ControlWire.maximumMessageSize + 1), "an oversized message")
    }

    /// A `finished` (no failure) carrying `report`, without its header.
    private func finishedPayload(_ report: RunReport) throws -> [UInt8] {
        Array(try ControlMessage.finished(failure: nil, report: report).encoded().dropFirst(ControlWire.headerSize))
    }

    func testAReportIsReadOnlyInItsOneForm() throws {
        // Counters (6 x u64), then the measurement count at offset 5 + 48.
        let countOffset = 5 + 6 * 8
        let two = try finishedPayload(RunReport(measurementDeltas: ["a": 1, "b": 2]))
        // The same two names in descending order: "b" then "a".
        var swapped = two
        let entry = 4 + 1 + 8
        let first = Array(two[(countOffset + 4)..<(countOffset + 4 + entry)])
        let second = Array(two[(countOffset + 4 + entry)..<(countOffset + 4 + 2 * entry)])
        swapped.replaceSubrange((countOffset + 4)..<(countOffset + 4 + 2 * entry), with: second + first)
        assertViolation(header(kind: 7, length: swapped.count) + swapped, "measurement names out of order")
        // A count over the bound.
        var many = try finishedPayload(RunReport())
        many.replaceSubrange(countOffset..<(countOffset + 4), with: UInt32(ControlWire.maximumMeasurements + 1).littleEndianBytes())
        assertViolation(header(kind: 7, length: many.count) + many, "too many measurements")
        // A set-up time marked absent: the last 9 bytes are its flag and value.
        var setUp = try finishedPayload(RunReport())
        setUp[setUp.count - 8] = 1
        assertViolation(header(kind: 7, length: setUp.count) + setUp, "a set-up time marked absent")
        // A counter past Int.max.
        var huge = try finishedPayload(RunReport())
        huge.replaceSubrange(5..<13, with: UInt64.max.littleEndianBytes())
        assertViolation(header(kind: 7, length: huge.count) + huge, "a counter past Int.max")
    }

    /// Supervisor counters with these values (the rest zero).
    private func counters(notifications: Int = 0, redirected: Int = 0, local: Int = 0, refused: Int = 0,
                          redirectedNanoseconds: UInt64 = 0, executorNanoseconds: UInt64 = 0) -> SupervisorCounters {
        var counters = SupervisorCounters()
        counters.notifications = notifications
        counters.redirected = redirected
        counters.local = local
        counters.refused = refused
        counters.redirectedNanoseconds = redirectedNanoseconds
        counters.executorNanoseconds = executorNanoseconds
        return counters
    }

    func testReportsFromASupervisedRun() {
        var supervised = counters(notifications: 10, redirected: 4, local: 5, refused: 1, redirectedNanoseconds: 40_000,
                                  executorNanoseconds: 30_000)
        supervised.guestCalls = 6
        supervised.byName = ["openat": 2]
        let report = RunReport(counters: supervised, measuredBefore: ["calls": 100, "transitions": 120],
                               measuredAfter: ["calls": 104, "transitions": 128, "new": 3],
                               origin: "reusing", setUp: .milliseconds(250))
        XCTAssertEqual(report, RunReport(counters: counters(notifications: 10, redirected: 4, local: 5, refused: 1,
                                                            redirectedNanoseconds: 40_000, executorNanoseconds: 30_000),
                                         measurementDeltas: ["calls": 4, "transitions": 8, "new": 3],
                                         origin: "reusing", setUpNanoseconds: 250_000_000))
        XCTAssertEqual(report.counters.hostMicrosecondsPerRedirectedCall, 2.5, accuracy: 1e-9)
    }

    func testAnotherVersionIsNamed() {
        XCTAssertThrowsError(try ControlMessage.decode(header(kind: 2, length: 0, version: 9))) { error in
            XCTAssertEqual(error as? ControlError, .versionMismatch(peer: 9))
            XCTAssertTrue("\(error)".contains("version 9"), "\(error)")
        }
    }
}
