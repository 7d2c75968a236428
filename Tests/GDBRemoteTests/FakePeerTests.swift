import Foundation
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

    // MARK: - Floods cannot extend a wait

    /// A peer that sends nothing but acknowledgements while the client waits
    /// for a reply: the wait ends at its deadline, not when the flood stops.
    func testAckFloodDoesNotExtendTheWait() throws {
        let (connection, peer) = try makePair()
        defer { close(peer) }
        let channel = PacketChannel(connection: connection)
        let floodEnds = Date().addingTimeInterval(4)
        let done = DispatchSemaphore(value: 0)
        let flood = Thread {
            let acks = [UInt8](repeating: UInt8(ascii: "+"), count: 4096)
            while Date() < floodEnds, send(peer, acks, acks.count, Int32(MSG_NOSIGNAL)) > 0 {}
            done.signal()
        }
        flood.start()
        defer {
            connection.close()  // ends the flood (EPIPE) before the peer's fd is closed
            done.wait()
        }
        let start = Date()
        XCTAssertThrowsError(try channel.receive(deadline: Deadline(seconds: 0.3), what: "reply")) { error in
            XCTAssertEqual(error as? GDBRemoteError, .timeout(waitingFor: "reply", seconds: 0.3))
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.5, "the flood extended the wait")
    }

    /// In no-ack mode, a stub answering every request with stop replies: the
    /// request times out on time, and the message states the time waited.
    func testStopReplyFloodInNoAckModeTimesOutOnTime() throws {
        let (connection, peer) = try makePair()
        defer { close(peer) }
        let stub = FakeStub(fd: peer) { command, stub in
            guard command == "g" else { return stub.reply("") }
            let burst = [UInt8]((0..<64).flatMap { _ in Packet.encode(Array("T05thread:01;".utf8)) })
            while !stub.isStopped, stub.sendRaw(burst) {}
        }
        stub.start()
        defer {
            stub.stop()
            connection.close()  // ends the stub's flood and its reads before the peer's fd is closed
            stub.join()
        }
        let client = try GDBRemoteClient(connection: connection, timeout: 0.4)
        let start = Date()
        XCTAssertThrowsError(try client.readRegisterBlock()) { error in
            guard case let GDBRemoteError.timeout(_, seconds) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(seconds, 0.4, "the message states the time waited")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2, "the flood extended the wait")
        XCTAssertFalse(client.isAttached, "a flooding stub is abandoned")
    }

    /// The time in a timeout message is the wait's length, not what was left of it.
    func testTimeoutMessageStatesTheWholeWait() throws {
        let (connection, peer) = try makePair()
        defer { close(peer) }
        let channel = PacketChannel(connection: connection)
        Self.peerWrite(peer, "+")  // something to read first, so the final poll is shorter than the wait
        XCTAssertThrowsError(try channel.receive(deadline: Deadline(seconds: 0.25), what: "reply")) { error in
            XCTAssertEqual(error as? GDBRemoteError, .timeout(waitingFor: "reply", seconds: 0.25))
            XCTAssertTrue("\(error)".contains("within 0.25 s"), "\(error)")
        }
    }

    // MARK: - Cancellation

    /// A cancelled wait ends at once (Ctrl-C during the handshake), and every later one too.
    func testCancellationEndsTheHandshakeAtOnce() throws {
        let (c, peer) = try makePair()
        defer { close(peer) }
        c.close()
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        defer { close(fds[1]) }
        let cancellation = try Cancellation()
        let connection = try Connection(adopting: fds[0], cancellation: cancellation)
        let canceller = Thread {
            usleep(200_000)
            cancellation.cancel()
        }
        canceller.start()
        let start = Date()
        XCTAssertThrowsError(try GDBRemoteClient(connection: connection, timeout: 10)) { error in
            guard case GDBRemoteError.cancelled = error else { return XCTFail("\(error)") }
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2, "cancel must not wait for the 10 s timeout")
        XCTAssertTrue(cancellation.isCancelled)
    }

    /// Connecting to a listener that never accepts... is immediate for AF_UNIX, so
    /// the connect wait is shown on a cancellation made before the connection.
    func testCancelledBeforeConnectingFailsFast() throws {
        let cancellation = try Cancellation()
        cancellation.cancel()
        let start = Date()
        // A TCP connect to a non-routable address would wait for the whole timeout.
        XCTAssertThrowsError(try Connection(to: .tcp(host: "10.255.255.1", port: 9), timeout: 10, cancellation: cancellation)) { error in
            switch error as? GDBRemoteError {
            case .cancelled?, .connectFailed?: break  // connectFailed: no route at all on this host
            default: XCTFail("\(error)")
            }
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
    }

    // MARK: - Stop replies

    /// A stop reply naming a thread the stub never listed is refused, not
    /// taken as vCPU 0.
    func testStopReplyForAnUnknownThreadIsAnError() throws {
        let (connection, peer) = try makePair()
        defer { close(peer) }
        let stub = FakeStub(fd: peer) { command, stub in
            // The one listed thread is 1; the stop names thread 7.
            if command.hasPrefix("vCont;c") || command == "c" { stub.reply("T02thread:07;") } else { stub.reply("") }
        }
        stub.start()
        defer {
            connection.close()
            stub.join()
        }
        let target = try GDBRemoteTarget(client: GDBRemoteClient(connection: connection, timeout: 2))
        XCTAssertEqual(target.vcpus.count, 1)
        XCTAssertThrowsError(try target.resume(until: .seconds(2), stoppingAt: { _, _ in true })) { error in
            guard case let GDBRemoteError.badReply(_, reply) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reply.contains("thread 7"), reply)
        }
    }

    /// After the stub closes the connection, every later call says so
    /// (instead of a bare "detached"), and the client is no longer attached.
    func testCallsAfterTheStubClosedSayWhy() throws {
        let (connection, peer) = try makePair()
        defer { close(peer) }
        let stub = FakeStub(fd: peer) { command, stub in
            if command == "g" { shutdown(stub.fd, Int32(SHUT_RDWR)) } else { stub.reply("") }
        }
        stub.start()
        defer {
            connection.close()
            stub.join()
        }
        let client = try GDBRemoteClient(connection: connection, timeout: 2)
        XCTAssertThrowsError(try client.readRegisterBlock()) { error in
            guard case GDBRemoteError.closed = error else { return XCTFail("\(error)") }
        }
        XCTAssertFalse(client.isAttached)
        XCTAssertThrowsError(try client.readRegister(0)) { error in
            guard case GDBRemoteError.broken(by: .closed)? = error as? GDBRemoteError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("the connection to the GDB stub is gone"), "\(error)")
            XCTAssertTrue("\(error)".contains("closed the connection"), "\(error)")
        }
    }

    /// Packets sent instead of the ack of ours are kept only up to a bound:
    /// a peer cannot make the client queue without end while it waits.
    func testPacketsInsteadOfAnAckAreBounded() throws {
        let (connection, peer) = try makePair()
        defer { close(peer) }
        let channel = PacketChannel(connection: connection)
        let stop = String(decoding: Packet.encode(Array("T05thread:01;".utf8)), as: UTF8.self)
        Self.peerWrite(peer, String(repeating: stop, count: PacketChannel.maxQueued + 1))
        XCTAssertThrowsError(try channel.send(Array("g".utf8), deadline: Deadline(seconds: 2), what: "g")) { error in
            guard case let GDBRemoteError.garbage(detail)? = error as? GDBRemoteError else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("more than \(PacketChannel.maxQueued) packets"), detail)
        }
    }
}
