import XCTest
@testable import GDBRemote
import Guest

/// Framing, checksums, escapes and run-length decoding against examples
/// computed by hand from "Remote Protocol" > "Overview".
final class PacketTests: XCTestCase {
    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    func testChecksumAndFraming() {
        // 'O'+'K' = 0x4f + 0x4b = 0x9a
        XCTAssertEqual(Packet.encode("OK"), bytes("$OK#9a"))
        // "g" = 0x67
        XCTAssertEqual(Packet.encode("g"), bytes("$g#67"))
        XCTAssertEqual(Packet.encode(""), bytes("$#00"))
        // '?' = 0x3f
        XCTAssertEqual(Packet.encode("?"), bytes("$?#3f"))
    }

    func testEscapingOnEncode() {
        // '#' -> '}' 0x03, '$' -> '}' 0x04, '}' -> '}' ']', '*' -> '}' 0x0a
        let framed = Packet.encode([0x23, 0x24, 0x7D, 0x2A, 0x41])
        let body: [UInt8] = [0x7D, 0x03, 0x7D, 0x04, 0x7D, 0x5D, 0x7D, 0x0A, 0x41]
        let sum = body.reduce(UInt8(0), &+)
        XCTAssertEqual(framed, [0x24] + body + [0x23] + bytes(hex(sum, width: 2)))
        XCTAssertEqual(try Packet.decode(body), [0x23, 0x24, 0x7D, 0x2A, 0x41])
    }

    func testRunLengthDecoding() throws {
        // "0* " = '0' then ' ' (32) - 29 = 3 more: "0000" (the manual's example).
        XCTAssertEqual(try Packet.decode(bytes("0* ")), bytes("0000"))
        // '"' (34) - 29 = 5 more zeros after "a0".
        XCTAssertEqual(try Packet.decode(bytes("a0*\"b")), bytes("a000000b"))
        XCTAssertThrowsError(try Packet.decode(bytes("*  ")))          // nothing to repeat
        XCTAssertThrowsError(try Packet.decode(bytes("0*")))           // truncated
        XCTAssertThrowsError(try Packet.decode(bytes("0*\u{1c}")))     // count below 1
        XCTAssertThrowsError(try Packet.decode(bytes("0*~"), limit: 10)) { error in
            XCTAssertEqual(error as? GDBRemoteError, .packetTooLarge(limit: 10))
        }
    }

    func testRoundTripThroughScanner() throws {
        let payload: [UInt8] = Array(0...255)
        var scanner = PacketScanner()
        scanner.append(bytes("+") + Packet.encode(payload) + bytes("-"))
        XCTAssertEqual(try scanner.next(), .ack)
        guard case let .packet(body)? = try scanner.next() else { return XCTFail("no packet") }
        XCTAssertEqual(try Packet.decode(body), payload)
        XCTAssertEqual(try scanner.next(), .nack)
        XCTAssertNil(try scanner.next())
    }

    func testScannerNeedsMoreThenCompletes() throws {
        var scanner = PacketScanner()
        scanner.append(bytes("$O"))
        XCTAssertNil(try scanner.next())
        scanner.append(bytes("K#9"))
        XCTAssertNil(try scanner.next())
        scanner.append(bytes("a"))
        XCTAssertEqual(try scanner.next(), .packet(body: bytes("OK")))
    }

    func testBadChecksumIsReportedNotThrown() throws {
        var scanner = PacketScanner()
        scanner.append(bytes("$OK#00"))
        XCTAssertEqual(try scanner.next(), .badChecksum)
    }

    func testGarbageAndOversizedAreRejected() {
        var garbage = PacketScanner()
        garbage.append(bytes("SSH-2.0-OpenSSH\r\n"))
        XCTAssertThrowsError(try garbage.next()) { error in
            guard case GDBRemoteError.garbage = error else { return XCTFail("\(error)") }
        }
        var badDigits = PacketScanner()
        badDigits.append(bytes("$OK#zz"))
        XCTAssertThrowsError(try badDigits.next())
        var nested = PacketScanner()
        nested.append(bytes("$O$K#00"))
        XCTAssertThrowsError(try nested.next())
        var huge = PacketScanner(limit: 16)
        huge.append(bytes("$") + Array(repeating: 0x61, count: 40))
        XCTAssertThrowsError(try huge.next()) { error in
            XCTAssertEqual(error as? GDBRemoteError, .packetTooLarge(limit: 16))
        }
    }

    func testStopReplies() throws {
        let t = try StopReply(parsing: bytes("T05thread:p01.02;swbreak:;"), request: "c")
        XCTAssertEqual(t, .signal(5, thread: ThreadID(process: 1, thread: 2), pairs: ["thread": "p01.02", "swbreak": ""]))
        // Before multiprocess is negotiated QEMU writes a bare thread id.
        let plain = try StopReply(parsing: bytes("T02thread:01;"), request: "c")
        XCTAssertEqual(plain, .signal(2, thread: ThreadID(process: nil, thread: 1), pairs: ["thread": "01"]))
        XCTAssertEqual(try StopReply(parsing: bytes("W00"), request: "c"), .exited(status: 0))
        XCTAssertEqual(try StopReply(parsing: bytes("X09"), request: "c"), .terminated(signal: 9))
        XCTAssertThrowsError(try StopReply(parsing: bytes("T05thread:pzz.1;"), request: "c"))
        XCTAssertFalse(StopReply.looksLikeStop(bytes("OK")))
        XCTAssertEqual(ThreadID(parsing: "p1.-1")?.description, "p1.-1")
        XCTAssertEqual(ThreadID(parsing: "p01.0a")?.description, "p1.a")
        XCTAssertNil(ThreadID(parsing: "p1"))
        XCTAssertNil(ThreadID(parsing: "123456789"))
    }

    func testAddressParsing() throws {
        XCTAssertEqual(try GDBRemoteAddress(parsing: "unix:/tmp/q/gdb.sock"), .unix(path: "/tmp/q/gdb.sock"))
        XCTAssertEqual(try GDBRemoteAddress(parsing: "tcp:localhost:1234"), .tcp(host: "localhost", port: 1234))
        XCTAssertEqual(try GDBRemoteAddress(parsing: "tcp:[::1]:1234"), .tcp(host: "::1", port: 1234))
        for bad in ["", "unix:", "tcp:host", "tcp:host:0", "tcp:host:70000", "tcp::1", "http://x", "unix:" + String(repeating: "a", count: 200)] {
            XCTAssertThrowsError(try GDBRemoteAddress(parsing: bad), bad)
        }
    }

    func testConnectErrorsAreClear() {
        XCTAssertThrowsError(try Connection(to: .unix(path: "/nonexistent/gdb.sock"), timeout: 1)) { error in
            XCTAssertTrue("\(error)".contains("no socket at that path"), "\(error)")
        }
        // Port 1 on loopback: nothing listens there.
        XCTAssertThrowsError(try Connection(to: .tcp(host: "127.0.0.1", port: 1), timeout: 1)) { error in
            XCTAssertTrue("\(error)".contains("nothing is listening"), "\(error)")
        }
    }

    /// A flood of acks is scanned in linear time: 1 MiB of them, then a
    /// packet, take well under a second (dropping each ack from the front of the
    /// buffer took about 20 s and kept a core busy).
    func testAckFloodScansInLinearTime() throws {
        var scanner = PacketScanner(limit: 4096)
        let acks = [UInt8](repeating: Packet.ack, count: 1 << 20)
        let start = Date()
        scanner.append(acks)
        scanner.append(Packet.encode(Array("OK".utf8)))
        var count = 0
        while let event = try scanner.next() {
            if event == .ack { count += 1; continue }
            XCTAssertEqual(event, .packet(body: Array("OK".utf8)))
        }
        XCTAssertEqual(count, acks.count)
        XCTAssertTrue(scanner.buffer.isEmpty)
        XCTAssertLessThan(Date().timeIntervalSince(start), 3, "quadratic scanning")
    }

    /// Events split across appends come out whole, in order, after consumed bytes are dropped.
    func testScannerAcrossManyAppends() throws {
        var scanner = PacketScanner(limit: 64)
        let stream = Array("+$OK#9a-".utf8) + Packet.encode(Array("T05thread:01;".utf8)) + [Packet.ack]
        var events: [PacketEvent] = []
        for round in 0..<3 {
            for byte in stream {
                scanner.append([byte])
                while let event = try scanner.next() { events.append(event) }
            }
            XCTAssertEqual(events.count, 5 * (round + 1))
        }
        XCTAssertEqual(Array(events.prefix(5)), [.ack, .packet(body: Array("OK".utf8)), .nack,
                                                 .packet(body: Array("T05thread:01;".utf8)), .ack])
    }
}
