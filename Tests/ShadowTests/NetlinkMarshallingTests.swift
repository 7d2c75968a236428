import Glibc
import Guest
import XCTest
@testable import Shadow

/// A guest whose netlink answers are scripted, hostile ones included: the
/// machine has no guest to give them. Region memory is a LocalExecutor's;
/// each call is recorded and answered by `answer` (nil: -ENOSYS).
final class ScriptedNetlinkGuest: GuestSyscallExecutor {
    struct Call: Equatable { var number: Int; var arguments: [UInt64] }
    let region = LocalExecutor(regionSize: 16384)
    private(set) var calls: [Call] = []
    var answer: (Call, ScriptedNetlinkGuest) throws -> Int64? = { _, _ in nil }
    var regionAddress: UInt64 { region.regionAddress }
    var regionSize: Int { region.regionSize }
    func writeRegion(offset: Int, _ bytes: [UInt8]) throws { try region.writeRegion(offset: offset, bytes) }
    func readRegion(offset: Int, count: Int) throws -> [UInt8] { try region.readRegion(offset: offset, count: count) }
    func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 {
        let call = Call(number: number, arguments: arguments)
        calls.append(call)
        return try answer(call, self) ?? -Int64(ENOSYS)
    }
    /// Region bytes at guest address `address`.
    func bytes(at address: UInt64, count: Int) throws -> [UInt8] { try region.readRegion(offset: Int(address - regionAddress), count: count) }
    func write(_ bytes: [UInt8], at address: UInt64) throws { try region.writeRegion(offset: Int(address - regionAddress), bytes) }
    func calls(of number: Int) -> [Call] { calls.filter { $0.number == number } }
}

/// The netlink calls' marshalling against scripted guest answers: results
/// bounded by the inspector's buffers, MSG_TRUNC's longer result, hostile
/// lengths, refused writes, and receives that never park S.
final class NetlinkMarshallingTests: XCTestCase {
    typealias N = LinuxABI.Syscall
    let guest = ScriptedNetlinkGuest()
    let installer = RecordingInstaller()
    lazy var redirector = SyscallRedirector(executor: guest, policy: ShadowPolicy(), range: .standard)
    /// The guest fd of S's netlink socket, and its local number.
    let guestSocket: Int32 = 5, local: Int32 = 1000

    override func setUp() {
        redirector.table.insert(local: local, .init(guestFd: guestSocket, path: "socket:[NETLINK_ROUTE]", netlink: .route))
    }

    private func handle(_ n: Int, _ arguments: [UInt64], validate: () throws -> Void = {}) -> SyscallReply {
        redirector.handle(SyscallRequest(number: n, arguments: arguments, pid: getpid()), installer: installer, validate: validate).reply
    }

    private func address(_ pointer: UnsafeMutableRawBufferPointer) -> UInt64 { UInt64(UInt(bitPattern: pointer.baseAddress)) }

    /// A `struct msghdr` for this process: name, iovecs, control.
    private func messageHeader(name: UInt64 = 0, nameLength: Int32 = 0, iovecs: UInt64, count: Int,
                               control: UInt64 = 0, controlLength: Int = 0) -> [UInt8] {
        var header = SyscallRedirector.messageHeader(name: name, nameLength: 0, iovecs: iovecs, control: control, controlLength: controlLength)
        header.replaceSubrange(8 ..< 12, with: nameLength.littleEndianBytes())
        header.replaceSubrange(24 ..< 32, with: UInt64(count).littleEndianBytes())
        return header
    }

    func testSocketOpensAGuestSocketOrIsRefused() {
        let socketCloexecRaw: UInt64 = 3 | 0o2000000
        XCTAssertEqual(handle(N.socket, [16, socketCloexecRaw, 9 /* NETLINK_AUDIT */]), .error(EPROTONOSUPPORT))
        XCTAssertEqual(guest.calls, [], "a refused protocol never reaches the guest")
        guest.answer = { call, _ in call.number == N.socket ? 7 : nil }
        XCTAssertEqual(handle(N.socket, [16, socketCloexecRaw, 4]), .value(1001), "the lowest free guest fd number")
        XCTAssertEqual(guest.calls, [.init(number: N.socket, arguments: [16, socketCloexecRaw, 4])])
        XCTAssertEqual(installer.installs.last, .init(local: 1001, cloexec: true))
        XCTAssertEqual(redirector.table.entry(local: 1001)?.netlink, .socketDiagnostics)
        XCTAssertEqual(handle(N.socket, [2, 1, 0]), .continueLocally, "an inet socket is the inspector's own")
    }

    /// iproute2 peeks with MSG_PEEK|MSG_TRUNC and no room to learn a message's size.
    func testPeekWithTruncateReturnsTheWholeLengthAndCopiesNothing() throws {
        guest.answer = { call, _ in call.number == N.recvmsg ? 2952 : nil }
        var iovec = [UInt8](repeating: 0, count: 16)
        let header = messageHeader(iovecs: iovec.withUnsafeMutableBytes { address($0) }, count: 1)
        var inspectorHeader = header
        let reply = inspectorHeader.withUnsafeMutableBytes { handle(N.recvmsg, [UInt64(local), address($0), 0x22]) }
        XCTAssertEqual(reply, .value(2952))
        let call = try XCTUnwrap(guest.calls(of: N.recvmsg).first)
        XCTAssertEqual(call.arguments[0], UInt64(guestSocket))
        XCTAssertEqual(call.arguments[2], 0x22 | 0x40, "MSG_DONTWAIT added: S never parks")
        let guestHeader = try guest.bytes(at: call.arguments[1], count: 56)
        let guestIovec = try guest.bytes(at: SyscallRedirector.loadUInt64(guestHeader, 16), count: 16)
        XCTAssertEqual(SyscallRedirector.loadUInt64(guestIovec, 8), 0, "no room asked, none given")
        _ = iovec
    }

    /// A message longer than the inspector's buffer: at most the buffer is written.
    func testTruncatedReceiveNeverWritesPastTheBuffer() throws {
        guest.answer = { call, guest in
            guard call.number == N.recvmsg else { return nil }
            let header = try guest.bytes(at: call.arguments[1], count: 56)
            let iovec = try guest.bytes(at: SyscallRedirector.loadUInt64(header, 16), count: 16)
            let room = Int(SyscallRedirector.loadUInt64(iovec, 8))
            try guest.write([UInt8](repeating: 0xAB, count: room), at: SyscallRedirector.loadUInt64(iovec, 0))
            return 100
        }
        var buffer = [UInt8](repeating: 0, count: 16)
        buffer.withUnsafeMutableBytes { raw in
            // The iovec covers the first 8 bytes; the other 8 are a guard.
            var iovec = address(raw).littleEndianBytes() + UInt64(8).littleEndianBytes()
            let iovecAddress = iovec.withUnsafeMutableBytes { address($0) }
            var header = messageHeader(iovecs: iovecAddress, count: 1)
            XCTAssertEqual(header.withUnsafeMutableBytes { handle(N.recvmsg, [UInt64(local), address($0), 0x20]) }, .value(100),
                           "MSG_TRUNC: the datagram's length, as the kernel returns it")
            XCTAssertEqual(header.withUnsafeMutableBytes { handle(N.recvmsg, [UInt64(local), address($0), 0]) }, .error(EIO),
                           "without MSG_TRUNC a result past the room is a broken guest")
            _ = iovec
        }
        XCTAssertEqual(Array(buffer[0 ..< 8]), [UInt8](repeating: 0xAB, count: 8))
        XCTAssertEqual(Array(buffer[8 ..< 16]), [UInt8](repeating: 0, count: 8), "nothing past the inspector's iovec")
    }

    /// The guest's lengths in the answered msghdr are checked before anything is copied by them.
    func testHostileNameAndControlLengthsAreRefused() throws {
        var hostileField = 8, hostileValue: [UInt8] = UInt32(1000).littleEndianBytes()
        guest.answer = { call, guest in
            guard call.number == N.recvmsg else { return nil }
            try guest.write(hostileValue, at: call.arguments[1] + UInt64(hostileField))
            return 0
        }
        var name = [UInt8](repeating: 0, count: 12), control = [UInt8](repeating: 0, count: 32)
        let nameAddress = name.withUnsafeMutableBytes { address($0) }, controlAddress = control.withUnsafeMutableBytes { address($0) }
        var header = messageHeader(name: nameAddress, nameLength: 12, iovecs: 0, count: 0, control: controlAddress, controlLength: 32)
        XCTAssertEqual(header.withUnsafeMutableBytes { handle(N.recvmsg, [UInt64(local), address($0), 0]) }, .error(EIO), "namelen 1000")
        hostileField = 40
        hostileValue = UInt64(33).littleEndianBytes()
        XCTAssertEqual(header.withUnsafeMutableBytes { handle(N.recvmsg, [UInt64(local), address($0), 0]) }, .error(EIO),
                       "controllen past the room given")
        XCTAssertEqual(name, [UInt8](repeating: 0, count: 12))
        XCTAssertEqual(control, [UInt8](repeating: 0, count: 32))
        _ = (nameAddress, controlAddress)
    }

    /// getsockname: the whole length is reported, only what fits is copied; a length past sockaddr_storage is a broken guest.
    func testSocketNameIsBoundedBothWays() throws {
        var reported: UInt32 = 12
        guest.answer = { call, guest in
            guard call.number == N.getsockname else { return nil }
            try guest.write(NetlinkMessage.address(port: 4321), at: call.arguments[1])
            try guest.write(reported.littleEndianBytes(), at: call.arguments[2])
            return 0
        }
        var name = [UInt8](repeating: 0xEE, count: 12)
        var length = UInt32(8).littleEndianBytes()
        let nameAddress = name.withUnsafeMutableBytes { address($0) }
        XCTAssertEqual(length.withUnsafeMutableBytes { handle(N.getsockname, [UInt64(local), nameAddress, address($0)]) }, .value(0))
        XCTAssertEqual(Array(name[0 ..< 8]), Array(NetlinkMessage.address(port: 4321)[0 ..< 8]))
        XCTAssertEqual(Array(name[8 ..< 12]), [0xEE, 0xEE, 0xEE, 0xEE], "only the 8 bytes the inspector offered")
        XCTAssertEqual(length, UInt32(12).littleEndianBytes(), "the address's whole length, as the kernel reports it")
        reported = 129
        length = UInt32(12).littleEndianBytes()
        XCTAssertEqual(length.withUnsafeMutableBytes { handle(N.getsockname, [UInt64(local), nameAddress, address($0)]) }, .error(EIO))
        _ = name
    }

    func testWritesAreRefusedAndReadsSentAsOneMessage() throws {
        guest.answer = { call, _ in call.number == N.sendmsg ? 40 : nil }
        let request = NetlinkMessage.make(type: NetlinkMessage.getLink, flags: NetlinkMessage.request | NetlinkMessage.dump,
                                          payload: [UInt8](repeating: 0, count: 24))
        let change = NetlinkMessage.make(type: NetlinkMessage.newAddress, flags: NetlinkMessage.request | NetlinkMessage.create)
        // The header in one iovec, the rest in another: the check sees them as the kernel does, as one message.
        for (bytes, expected) in [(request, SyscallReply.value(40)), (change, .error(EPERM))] {
            var first = Array(bytes[0 ..< 8]), second = Array(bytes[8...])
            var iovecs = first.withUnsafeMutableBytes { address($0).littleEndianBytes() } + UInt64(8).littleEndianBytes()
            iovecs += second.withUnsafeMutableBytes { address($0).littleEndianBytes() } + UInt64(second.count).littleEndianBytes()
            var header = messageHeader(iovecs: iovecs.withUnsafeMutableBytes { address($0) }, count: 2)
            XCTAssertEqual(header.withUnsafeMutableBytes { handle(N.sendmsg, [UInt64(local), address($0), 0]) }, expected)
            _ = (first, second, iovecs)
        }
        let sent = try XCTUnwrap(guest.calls(of: N.sendmsg).first)
        XCTAssertEqual(guest.calls(of: N.sendmsg).count, 1, "the change never reached the guest")
        let guestHeader = try guest.bytes(at: sent.arguments[1], count: 56)
        XCTAssertEqual(SyscallRedirector.loadUInt64(guestHeader, 24), 1, "one iovec")
        let iovec = try guest.bytes(at: SyscallRedirector.loadUInt64(guestHeader, 16), count: 16)
        XCTAssertEqual(try guest.bytes(at: SyscallRedirector.loadUInt64(iovec, 0), count: request.count), request)
        // sendto with a change, or to another process's port: refused too.
        var change2 = change, destination = NetlinkMessage.address(port: 99)
        XCTAssertEqual(change2.withUnsafeMutableBytes { handle(N.sendto, [UInt64(local), address($0), UInt64(change.count), 0, 0, 0]) },
                       .error(EPERM))
        var read = request
        let toProcess = read.withUnsafeMutableBytes { buffer in
            destination.withUnsafeMutableBytes { handle(N.sendto, [UInt64(local), address(buffer), UInt64(request.count), 0, address($0), 12]) }
        }
        XCTAssertEqual(toProcess, .error(EPERM))
        XCTAssertEqual(guest.calls(of: N.sendto), [])
    }

    /// Nothing to read: S polls a bounded number of times, the inspector's
    /// call is checked between polls, and the answer is EAGAIN.
    func testAnEmptySocketNeverParksS() throws {
        guest.answer = { call, _ in
            switch call.number {
            case N.recvfrom: return -Int64(EAGAIN)
            case N.fcntl: return 2 // O_RDWR: a blocking socket
            case N.poll: return 0
            default: return nil
            }
        }
        var buffer = [UInt8](repeating: 0, count: 64)
        let arguments = buffer.withUnsafeMutableBytes { [UInt64(local), address($0), 64, 0, 0, 0] }
        XCTAssertEqual(handle(N.recvfrom, arguments), .error(EAGAIN))
        let polls = guest.calls(of: N.poll)
        XCTAssertEqual(polls.count, Int(SyscallRedirector.receiveWaitMilliseconds / SyscallRedirector.receivePollMilliseconds))
        XCTAssertTrue(polls.allSatisfy { $0.arguments[2] == SyscallRedirector.receivePollMilliseconds }, "each poll is bounded")
        // The inspector was interrupted meanwhile: its call ends with EINTR.
        var validations = 0
        XCTAssertEqual(handle(N.recvfrom, arguments, validate: {
            validations += 1
            if validations > 2 { throw SupervisorError.notificationGone }
        }), .error(EINTR))
        // MSG_DONTWAIT: at once, no poll.
        let pollsBefore = guest.calls(of: N.poll).count
        XCTAssertEqual(handle(N.recvfrom, [UInt64(local), arguments[1], 64, 0x40, 0, 0]), .error(EAGAIN))
        XCTAssertEqual(guest.calls(of: N.poll).count, pollsBefore)
        _ = buffer
    }

    func testCallsOnAGuestFileAreNotSocketCalls() {
        redirector.table.insert(local: 1002, .init(guestFd: 6, path: "/proc/version"))
        XCTAssertEqual(handle(N.bind, [1002, 0, 0]), .error(ENOTSOCK))
        XCTAssertEqual(handle(N.sendto, [3, 0, 0, 0, 0, 0]), .continueLocally, "the inspector's own socket")
        XCTAssertEqual(guest.calls, [])
    }

    func testRefusedSocketOptionNeverReachesTheGuest() {
        var value = UInt32(1).littleEndianBytes()
        let reply = value.withUnsafeMutableBytes { handle(N.setsockopt, [UInt64(local), 1, UInt64(SO_ATTACH_FILTER), address($0), 4]) }
        XCTAssertEqual(reply, .error(ENOPROTOOPT))
        XCTAssertEqual(guest.calls, [])
    }
}
