import Glibc
import Guest

/// x86_64 socket ABI facts the netlink calls are marshalled with.
enum SocketABI {
    /// `struct msghdr` (include/linux/socket.h, 64-bit user layout): name
    /// pointer, int name length (4 bytes padding), iovec pointer, size_t
    /// iovec count, control pointer, size_t control length, int flags.
    static let messageHeaderSize = 56
    static let nameOffset = 0
    static let nameLengthOffset = 8
    static let iovecsOffset = 16
    static let iovecCountOffset = 24
    static let controlOffset = 32
    static let controlLengthOffset = 40
    static let flagsOffset = 48
    /// sizeof(struct sockaddr_storage), `_K_SS_MAXSIZE` (include/uapi/linux/socket.h):
    /// the kernel refuses longer addresses and clamps receive buffers to it.
    static let addressStorage = 128
    /// MSG_PEEK, MSG_TRUNC, MSG_DONTWAIT (include/linux/socket.h).
    static let messagePeek: UInt64 = 0x2
    static let messageTruncate: UInt64 = 0x20
    static let messageDontWait: UInt64 = 0x40
    /// Most bytes of a socket option value passed on (swvmm's bound: every
    /// option redirected is an int or a small struct).
    static let optionMax = 256
    /// Most bytes of ancillary data received (swvmm's bound: netlink sends
    /// only NETLINK_PKTINFO and SCM_CREDENTIALS, a few dozen bytes).
    static let controlMax = 4096
    /// `struct pollfd` (include/uapi/asm-generic/poll.h): int fd, short
    /// events, short revents; POLLIN.
    static let pollfdSize = 8
    static let pollIn: UInt16 = 0x1
}

extension SyscallRedirector {
    /// socket(AF_NETLINK, type, protocol): a socket of S's for the protocols
    /// that read the guest, installed as a guest fd.
    func netlinkSocket(_ spec: SyscallSpec, _ request: SyscallRequest, _ validate: () throws -> Void,
                       _ installer: GuestFdInstaller) throws -> SyscallReply {
        let type = UInt64(UInt32(truncatingIfNeeded: request.arguments[1]))
        let netlink: NetlinkProtocol
        switch NetlinkPolicy.protocolOrRefusal(UInt32(truncatingIfNeeded: request.arguments[2])) {
        case .success(let known): netlink = known
        case .failure(let refusal): return refuse(spec, refusal.errno, refusal.why)
        }
        try validate()
        let result = try guestCall(LinuxABI.Syscall.socket,
                                   [UInt64(SyscallSpecTable.addressFamilyNetlink), type, UInt64(netlink.rawValue)], name: spec.name)
        countRedirected(spec)
        if result < 0 { return .error(Int32(-result)) }
        let g = try guestFd(result, spec.name)
        // SOCK_CLOEXEC is O_CLOEXEC (include/linux/net.h).
        return install(guestFd: g, path: "socket:[\(netlink.name)]", netlink: netlink,
                       cloexec: type & LinuxABI.oCloexec != 0, exactly: nil, atLeast: nil, with: installer)
    }

    /// The socket calls on a guest fd: only a netlink socket of S's takes them.
    func netlinkCall(_ spec: SyscallSpec, _ request: SyscallRequest, _ validate: () throws -> Void) throws -> SyscallReply {
        guard let entry = table.entry(rawArgument: request.arguments[0]) else { return .continueLocally }
        // What the guest kernel would answer for a file.
        guard let netlink = entry.netlink else { return .error(ENOTSOCK) }
        let socket = UInt64(UInt32(bitPattern: entry.guestFd))
        switch spec.number {
        case LinuxABI.Syscall.bind: return try bind(spec, request, socket, validate)
        case LinuxABI.Syscall.getsockname: return try socketName(spec, request, socket, validate)
        case LinuxABI.Syscall.setsockopt: return try setOption(spec, request, socket, validate)
        case LinuxABI.Syscall.getsockopt: return try getOption(spec, request, socket, validate)
        case LinuxABI.Syscall.sendto: return try sendTo(spec, request, socket, netlink, validate)
        case LinuxABI.Syscall.sendmsg: return try sendMessage(spec, request, socket, netlink, validate)
        case LinuxABI.Syscall.recvfrom: return try receiveFrom(spec, request, socket, validate)
        case LinuxABI.Syscall.recvmsg: return try receiveMessage(spec, request, socket, validate)
        default: return .continueLocally
        }
    }

    /// The inspector's answer for a raw guest result that carries no length.
    static func reply(_ result: Int64) -> SyscallReply { result < 0 ? .error(Int32(-result)) : .value(result) }

    private func bind(_ spec: SyscallSpec, _ request: SyscallRequest, _ socket: UInt64,
                      _ validate: () throws -> Void) throws -> SyscallReply {
        let length = request.int32(2)
        guard length >= 0, length <= SocketABI.addressStorage else { return .error(EINVAL) }
        let address = try InspectorMemory(pid: request.pid).read(request.arguments[1], count: Int(length))
        var cursor = RegionCursor(base: executor.regionAddress, size: executor.regionSize)
        let offset = try cursor.reserve(address.count)
        try executor.writeRegion(offset: offset, address)
        try validate()
        let result = try guestCall(LinuxABI.Syscall.bind, [socket, cursor.address(offset), UInt64(length)], name: spec.name)
        countRedirected(spec)
        return Self.reply(result)
    }

    private func socketName(_ spec: SyscallSpec, _ request: SyscallRequest, _ socket: UInt64,
                            _ validate: () throws -> Void) throws -> SyscallReply {
        // The kernel reports the address's whole length, copying what fits.
        try lengthedCall(spec, request, buffer: 1, length: 2, capacity: SocketABI.addressStorage, limit: { _ in SocketABI.addressStorage },
                         validate) { [socket, $0, $1] }
    }

    private func setOption(_ spec: SyscallSpec, _ request: SyscallRequest, _ socket: UInt64,
                           _ validate: () throws -> Void) throws -> SyscallReply {
        let level = request.int32(1), option = request.int32(2), length = request.int32(4)
        if let refusal = NetlinkPolicy.refusal(ofOptionLevel: level, option: option) {
            return refuse(spec, refusal.errno, refusal.why)
        }
        guard length >= 0 else { return .error(EINVAL) }
        // The options let through read at most an int; a longer value is cut, not refused.
        let value = try InspectorMemory(pid: request.pid).read(request.arguments[3], count: min(Int(length), SocketABI.optionMax))
        var cursor = RegionCursor(base: executor.regionAddress, size: executor.regionSize)
        let offset = try cursor.reserve(value.count)
        try executor.writeRegion(offset: offset, value)
        try validate()
        let result = try guestCall(LinuxABI.Syscall.setsockopt,
                                   [socket, request.arguments[1], request.arguments[2], cursor.address(offset), UInt64(value.count)],
                                   name: spec.name)
        countRedirected(spec)
        return Self.reply(result)
    }

    private func getOption(_ spec: SyscallSpec, _ request: SyscallRequest, _ socket: UInt64,
                           _ validate: () throws -> Void) throws -> SyscallReply {
        // An option value never grows past the room it was given.
        try lengthedCall(spec, request, buffer: 3, length: 4, capacity: SocketABI.optionMax, limit: { $0.given }, validate) {
            [socket, request.arguments[1], request.arguments[2], $0, $1]
        }
    }

    /// A call that answers in a `LengthedOutput` (arguments `buffer` and
    /// `length`); `arguments` gets its buffer's and length's guest addresses.
    private func lengthedCall(_ spec: SyscallSpec, _ request: SyscallRequest, buffer: Int, length: Int, capacity: Int,
                              limit: (LengthedOutput) -> Int, _ validate: () throws -> Void,
                              arguments: (UInt64, UInt64) -> [UInt64]) throws -> SyscallReply {
        let memory = InspectorMemory(pid: request.pid)
        var cursor = RegionCursor(base: executor.regionAddress, size: executor.regionSize)
        guard let output = try lengthedOutput(memory, buffer: request.arguments[buffer], length: request.arguments[length],
                                              capacity: capacity, &cursor) else { return .error(EINVAL) }
        try validate()
        let result = try guestCall(spec.number, arguments(cursor.address(output.bufferOffset), cursor.address(output.lengthOffset)),
                                   name: spec.name)
        countRedirected(spec)
        if result < 0 { return .error(Int32(-result)) }
        try finish(output, limit: limit(output), memory, call: spec.name)
        return .value(result)
    }

    private func sendTo(_ spec: SyscallSpec, _ request: SyscallRequest, _ socket: UInt64, _ netlink: NetlinkProtocol,
                        _ validate: () throws -> Void) throws -> SyscallReply {
        let a = request.arguments
        let memory = InspectorMemory(pid: request.pid)
        var cursor = RegionCursor(base: executor.regionAddress, size: executor.regionSize)
        guard a[2] <= UInt64(max(0, cursor.remaining - 2 * SocketABI.addressStorage)) else {
            return refuse(spec, EMSGSIZE, "a \(a[2])-byte netlink message does not fit S's region")
        }
        let message = try memory.read(a[1], count: Int(a[2]))
        var destination: [UInt8]?
        if a[4] != 0 {
            let length = request.int32(5)
            guard length >= 0, length <= SocketABI.addressStorage else { return .error(EINVAL) }
            destination = try memory.read(a[4], count: Int(length))
        }
        let placed: PlacedMessage
        switch try placeOutgoing(message, to: destination, on: netlink, &cursor) {
        case .failure(let refusal): return refuse(spec, refusal.errno, refusal.why)
        case .success(let place): placed = place
        }
        try validate()
        let result = try guestCall(LinuxABI.Syscall.sendto,
                                   [socket, placed.message, UInt64(message.count), a[3],
                                    placed.destination, UInt64(destination?.count ?? 0)], name: spec.name)
        countRedirected(spec)
        return try Self.sent(result, of: message.count, call: spec.name)
    }

    private func sendMessage(_ spec: SyscallSpec, _ request: SyscallRequest, _ socket: UInt64, _ netlink: NetlinkProtocol,
                             _ validate: () throws -> Void) throws -> SyscallReply {
        let memory = InspectorMemory(pid: request.pid)
        let header = try memory.read(request.arguments[1], count: SocketABI.messageHeaderSize)
        let iovecCount = Self.loadUInt64(header, SocketABI.iovecCountOffset)
        guard iovecCount <= UInt64(Self.maxIovecs) else { return .error(EMSGSIZE) }
        guard let (iovecs, total) = try Self.inspectorIovecs(memory, at: Self.loadUInt64(header, SocketABI.iovecsOffset),
                                                             count: Int(iovecCount)) else { return .error(EINVAL) }
        var cursor = RegionCursor(base: executor.regionAddress, size: executor.regionSize)
        guard total <= max(0, cursor.remaining - 2 * SocketABI.addressStorage - SocketABI.messageHeaderSize) else {
            return refuse(spec, EMSGSIZE, "a \(total)-byte netlink message does not fit S's region")
        }
        if Self.loadUInt64(header, SocketABI.controlOffset) != 0, Self.loadUInt64(header, SocketABI.controlLengthOffset) != 0 {
            return refuse(spec, EOPNOTSUPP, "control messages to a guest netlink socket are not redirected")
        }
        // The kernel reads the iovecs as one message: so does the check.
        var message: [UInt8] = []
        for iovec in iovecs { message += try memory.read(iovec.address, count: iovec.length) }
        var destination: [UInt8]?
        if Self.loadUInt64(header, SocketABI.nameOffset) != 0 {
            let length = Int32(littleEndianBytes: header[SocketABI.nameLengthOffset...])
            guard length >= 0 else { return .error(EINVAL) }
            destination = try memory.read(Self.loadUInt64(header, SocketABI.nameOffset), count: min(Int(length), SocketABI.addressStorage))
        }
        let placed: PlacedMessage
        switch try placeOutgoing(message, to: destination, on: netlink, &cursor) {
        case .failure(let refusal): return refuse(spec, refusal.errno, refusal.why)
        case .success(let place): placed = place
        }
        let iovecOffset = try cursor.reserve(KernelStructSize.iovec)
        try executor.writeRegion(offset: iovecOffset, placed.message.littleEndianBytes() + UInt64(message.count).littleEndianBytes())
        let headerOffset = try cursor.reserve(SocketABI.messageHeaderSize)
        try executor.writeRegion(offset: headerOffset, Self.messageHeader(name: placed.destination, nameLength: destination?.count ?? 0,
                                                                          iovecs: cursor.address(iovecOffset),
                                                                          control: 0, controlLength: 0))
        try validate()
        let result = try guestCall(LinuxABI.Syscall.sendmsg, [socket, cursor.address(headerOffset), request.arguments[2]], name: spec.name)
        countRedirected(spec)
        return try Self.sent(result, of: message.count, call: spec.name)
    }

    /// Guest addresses of a message and its destination (0: none).
    struct PlacedMessage {
        var message: UInt64
        var destination: UInt64
    }

    /// Puts a message and its destination into the region, unless the policy refuses them.
    private func placeOutgoing(_ message: [UInt8], to destination: [UInt8]?, on netlink: NetlinkProtocol,
                               _ cursor: inout RegionCursor) throws -> Result<PlacedMessage, NetlinkPolicy.Refusal> {
        if let refusal = NetlinkPolicy.refusal(of: message, on: netlink) ?? NetlinkPolicy.refusal(ofDestination: destination) {
            return .failure(refusal)
        }
        let messageOffset = try cursor.reserve(message.count)
        try executor.writeRegion(offset: messageOffset, message)
        var placed = PlacedMessage(message: cursor.address(messageOffset), destination: 0)
        if let destination {
            let offset = try cursor.reserve(destination.count)
            try executor.writeRegion(offset: offset, destination)
            placed.destination = cursor.address(offset)
        }
        return .success(placed)
    }

    /// A send's result: never more than was sent.
    static func sent(_ result: Int64, of count: Int, call: String) throws -> SyscallReply {
        if result < 0 { return .error(Int32(-result)) }
        guard result <= Int64(count) else { throw SupervisorError.guestResultOutOfRange(call: call, result: result, limit: Int64(count)) }
        return .value(result)
    }

    /// A `struct msghdr` for S with one iovec at `iovecs`.
    static func messageHeader(name: UInt64, nameLength: Int, iovecs: UInt64, control: UInt64, controlLength: Int) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: SocketABI.messageHeaderSize)
        func put(_ bytes: [UInt8], at offset: Int) { header.replaceSubrange(offset ..< offset + bytes.count, with: bytes) }
        put(name.littleEndianBytes(), at: SocketABI.nameOffset)
        put(UInt32(nameLength).littleEndianBytes(), at: SocketABI.nameLengthOffset)
        put(iovecs.littleEndianBytes(), at: SocketABI.iovecsOffset)
        put(UInt64(1).littleEndianBytes(), at: SocketABI.iovecCountOffset)
        put(control.littleEndianBytes(), at: SocketABI.controlOffset)
        put(UInt64(controlLength).littleEndianBytes(), at: SocketABI.controlLengthOffset)
        return header
    }
}
