import XCTest
import Glibc
@testable import GDBRemote
import Guest

/// Protocol-error paths against an in-process fake peer over a socketpair.
/// A fake is needed here because real QEMU cannot be made to send garbage,
/// stay silent, or NACK on purpose; everything QEMU does is tested live.
final class FakePeerTests: XCTestCase {
    /// Our end as a `Connection`, and the peer's raw fd (closed in the defer of each test).
    func makePair() throws -> (Connection, Int32) {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        return (try Connection(adopting: fds[0]), fds[1])
    }

    static func peerWrite(_ fd: Int32, _ s: String) { _ = s.withCString { write(fd, $0, strlen($0)) } }
    static func peerRead(_ fd: Int32, atLeast n: Int, seconds: Double = 2) -> String {
        var out: [UInt8] = []
        let deadline = Date().addingTimeInterval(seconds)
        while out.count < n && Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 50) > 0 {
                var buf = [UInt8](repeating: 0, count: 4096)
                let k = read(fd, &buf, buf.count)
                if k <= 0 { break }
                out += buf[0..<k]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    func testGarbageInsteadOfProtocol() throws {
        let (connection, peer) = try makePair()
        defer { close(peer) }
        Self.peerWrite(peer, "SSH-2.0-OpenSSH_9.2\r\n")
        XCTAssertThrowsError(try GDBRemoteClient(connection: connection, timeout: 1)) { error in
            guard case GDBRemoteError.garbage = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("does not speak the GDB remote protocol"))
        }
    }

    func testSilenceTimesOutWithExplanation() throws {
        let (connection, peer) = try makePair()
        defer { close(peer) }
        let start = Date()
        XCTAssertThrowsError(try GDBRemoteClient(connection: connection, timeout: 0.3)) { error in
            guard case GDBRemoteError.timeout = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("another client holds it"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
    }

    func testPeerClosing() throws {
        let (connection, peer) = try makePair()
        close(peer)
        XCTAssertThrowsError(try GDBRemoteClient(connection: connection, timeout: 1)) { error in
            guard case GDBRemoteError.closed = error else { return XCTFail("\(error)") }
        }
    }

    func testNackCausesRetransmit() throws {
        let (connection, peer) = try makePair()
        defer { close(peer) }
        let channel = PacketChannel(connection: connection)
        let frame = String(decoding: Packet.encode("g"), as: UTF8.self)
        let peerThread = Thread {
            _ = Self.peerRead(peer, atLeast: frame.utf8.count)
            Self.peerWrite(peer, "-")
            _ = Self.peerRead(peer, atLeast: frame.utf8.count)   // the retransmission
            Self.peerWrite(peer, "+" + String(decoding: Packet.encode("0011"), as: UTF8.self))
        }
        peerThread.start()
        try channel.send(Array("g".utf8), deadline: Deadline(seconds: 2), what: "g")
        XCTAssertEqual(try channel.receive(deadline: Deadline(seconds: 2), what: "reply"), Array("0011".utf8))
        XCTAssertEqual(Self.peerRead(peer, atLeast: 1), "+")  // we acked the reply
    }

    func testBadChecksumIsNackedThenAccepted() throws {
        let (connection, peer) = try makePair()
        defer { close(peer) }
        let channel = PacketChannel(connection: connection)
        Self.peerWrite(peer, "$OK#00")   // wrong checksum
        let thread = Thread {
            XCTAssertEqual(Self.peerRead(peer, atLeast: 1), "-")
            Self.peerWrite(peer, "$OK#9a")
        }
        thread.start()
        XCTAssertEqual(try channel.receive(deadline: Deadline(seconds: 2), what: "reply"), Array("OK".utf8))
    }

    func testRepeatedChecksumFailuresGiveUp() throws {
        let (connection, peer) = try makePair()
        defer { close(peer) }
        let channel = PacketChannel(connection: connection)
        Self.peerWrite(peer, String(repeating: "$OK#00", count: 10))
        XCTAssertThrowsError(try channel.receive(deadline: Deadline(seconds: 2), what: "reply")) { error in
            XCTAssertEqual(error as? GDBRemoteError, .checksumFailures(attempts: PacketChannel.maxAttempts))
        }
    }

    func testOversizedReplyIsRefused() throws {
        let (connection, peer) = try makePair()
        defer { close(peer) }
        let channel = PacketChannel(connection: connection, limit: 1024)
        let thread = Thread { Self.peerWrite(peer, "$" + String(repeating: "a", count: 4096)) }
        thread.start()
        XCTAssertThrowsError(try channel.receive(deadline: Deadline(seconds: 2), what: "reply")) { error in
            XCTAssertEqual(error as? GDBRemoteError, .packetTooLarge(limit: 1024))
        }
        // RLE that expands past the limit is refused too.
        let (c2, p2) = try makePair()
        defer { close(p2) }
        let small = PacketChannel(connection: c2, limit: 8)
        // Raw body "a*~": 'a' then 126 - 29 = 97 more; framed by hand (no escaping).
        Self.peerWrite(p2, "$a*~#" + hex(Packet.checksum(Array("a*~".utf8)), width: 2))
        XCTAssertThrowsError(try small.receive(deadline: Deadline(seconds: 2), what: "reply")) { error in
            XCTAssertEqual(error as? GDBRemoteError, .packetTooLarge(limit: 8))
        }
    }
}
