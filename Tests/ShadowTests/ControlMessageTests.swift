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
            .finished(failure: nil),
            .finished(failure: "the guest went away"),
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
        assertViolation(header(kind: 7, length: 5) + [2, 0, 0, 0, 0], "a flag that is neither 0 nor 1")
        assertViolation(header(kind: 7, length: 6) + [0, 1, 0, 0, 0, 0x41], "a reason for a run that did not fail")
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

    func testAnotherVersionIsNamed() {
        XCTAssertThrowsError(try ControlMessage.decode(header(kind: 2, length: 0, version: 9))) { error in
            XCTAssertEqual(error as? ControlError, .versionMismatch(peer: 9))
            XCTAssertTrue("\(error)".contains("version 9"), "\(error)")
        }
    }
}
