import Glibc
import Guest

/// A buffer the guest fills with a `socklen_t` beside it that says, going in,
/// how much room the inspector has and, coming back, how long the value is
/// (getsockname, getsockopt, recvfrom's source address).
struct LengthedOutput {
    /// The inspector's buffer and length pointers.
    let buffer: UInt64
    let length: UInt64
    /// Room given to the guest: the inspector's, at most the capacity.
    let given: Int
    /// Where buffer and length lie in the region.
    let bufferOffset: Int
    let lengthOffset: Int
}

extension SyscallRedirector {
    /// How long S waits in one poll for a netlink answer, and in all, when
    /// the inspector asked to wait; its call is checked to still be waiting
    /// between polls. Past the limit it gets EAGAIN, as a socket with a
    /// receive timeout (SO_RCVTIMEO) answers. The kernel answers netlink
    /// requests while they are sent, so this is only ever the guest being slow.
    static let receivePollMilliseconds: UInt64 = 100
    static let receiveWaitMilliseconds: UInt64 = 2000

    /// Reserves room for a `LengthedOutput`; nil where the kernel answers
    /// EINVAL (a negative length).
    func lengthedOutput(_ memory: InspectorMemory, buffer: UInt64, length: UInt64, capacity: Int,
                        _ cursor: inout RegionCursor) throws -> LengthedOutput? {
        let asked = Int32(littleEndianBytes: try memory.read(length, count: 4))
        guard asked >= 0 else { return nil }
        let given = min(Int(asked), capacity)
        let bufferOffset = try cursor.reserve(given)
        let lengthOffset = try cursor.reserve(4)
        try executor.writeRegion(offset: lengthOffset, UInt32(given).littleEndianBytes())
        return LengthedOutput(buffer: buffer, length: length, given: given, bufferOffset: bufferOffset, lengthOffset: lengthOffset)
    }

    /// Copies a `LengthedOutput` back: the guest's length (at most `limit`)
    /// and as many bytes of the value as the inspector has room for.
    func finish(_ output: LengthedOutput, limit: Int, _ memory: InspectorMemory, call: String) throws {
        let returned = Int32(littleEndianBytes: try regionBytes(output.lengthOffset, 4))
        guard returned >= 0, Int(returned) <= limit else {
            throw SupervisorError.guestResultOutOfRange(call: call, result: Int64(returned), limit: Int64(limit))
        }
        try memory.write(output.buffer, try regionBytes(output.bufferOffset, min(output.given, Int(returned))))
        try memory.write(output.length, UInt32(returned).littleEndianBytes())
    }

    /// How many received bytes to copy back: the kernel's result is the
    /// datagram's whole length under MSG_TRUNC (more than the room:
    /// iproute2 peeks with no room to size its buffer), else at most the room.
    static func receivedCopy(_ result: Int64, room: Int, flags: UInt64, call: String) throws -> Int {
        guard flags & SocketABI.messageTruncate != 0 || result <= Int64(room) else {
            throw SupervisorError.guestResultOutOfRange(call: call, result: result, limit: Int64(room))
        }
        return Int(min(result, Int64(room)))
    }

    func receiveMessage(_ spec: SyscallSpec, _ request: SyscallRequest, _ socket: UInt64,
                        _ validate: () throws -> Void) throws -> SyscallReply {
        let memory = InspectorMemory(pid: request.pid)
        let headerAddress = request.arguments[1], flags = request.arguments[2]
        let header = try memory.read(headerAddress, count: SocketABI.messageHeaderSize)
        let iovecCount = Self.loadUInt64(header, SocketABI.iovecCountOffset)
        guard iovecCount <= UInt64(Self.maxIovecs) else { return .error(EMSGSIZE) }
        guard let (iovecs, total) = try Self.inspectorIovecs(memory, at: Self.loadUInt64(header, SocketABI.iovecsOffset),
                                                             count: Int(iovecCount)) else { return .error(EINVAL) }
        let namePointer = Self.loadUInt64(header, SocketABI.nameOffset)
        let nameLength = Int32(littleEndianBytes: header[SocketABI.nameLengthOffset...])
        guard namePointer == 0 || nameLength >= 0 else { return .error(EINVAL) }
        let nameRoom = namePointer == 0 ? 0 : min(Int(nameLength), SocketABI.addressStorage)
        let controlPointer = Self.loadUInt64(header, SocketABI.controlOffset)
        let controlRoom = controlPointer == 0 ? 0
            : Int(min(Self.loadUInt64(header, SocketABI.controlLengthOffset), UInt64(SocketABI.controlMax)))

        var cursor = RegionCursor(base: executor.regionAddress, size: executor.regionSize)
        let headerOffset = try cursor.reserve(SocketABI.messageHeaderSize)
        let iovecOffset = try cursor.reserve(KernelStructSize.iovec)
        let nameOffset = try cursor.reserve(nameRoom)
        let controlOffset = try cursor.reserve(controlRoom)
        let pollOffset = try cursor.reserve(SocketABI.pollfdSize)
        // Alignment can take up to 7 bytes of what is left.
        let room = min(total, max(0, cursor.remaining - 8))
        let dataOffset = try cursor.reserve(room)
        try executor.writeRegion(offset: iovecOffset, cursor.address(dataOffset).littleEndianBytes() + UInt64(room).littleEndianBytes())
        try executor.writeRegion(offset: headerOffset, Self.messageHeader(
            name: namePointer == 0 ? 0 : cursor.address(nameOffset), nameLength: nameRoom, iovecs: cursor.address(iovecOffset),
            control: controlPointer == 0 ? 0 : cursor.address(controlOffset), controlLength: controlRoom))
        try validate()
        let result = try receiveWithoutParking(socket, flags: flags, poll: cursor.address(pollOffset), pollOffset: pollOffset,
                                               call: spec.name, validate) { guestFlags in
            try guestCall(LinuxABI.Syscall.recvmsg, [socket, cursor.address(headerOffset), guestFlags], name: spec.name)
        }
        countRedirected(spec)
        if result < 0 { return .error(Int32(-result)) }
        let copied = try Self.receivedCopy(result, room: room, flags: flags, call: spec.name)
        try memory.write(try regionBytes(dataOffset, copied), scatteringOver: iovecs)

        let answered = try regionBytes(headerOffset, SocketABI.messageHeaderSize)
        if namePointer != 0 {
            // Like getsockname: the whole length, as many bytes as fit.
            let returned = Int32(littleEndianBytes: answered[SocketABI.nameLengthOffset...])
            guard returned >= 0, Int(returned) <= SocketABI.addressStorage else {
                throw SupervisorError.guestResultOutOfRange(call: spec.name, result: Int64(returned), limit: Int64(SocketABI.addressStorage))
            }
            try memory.write(namePointer, try regionBytes(nameOffset, min(nameRoom, Int(returned))))
            try memory.write(headerAddress + UInt64(SocketABI.nameLengthOffset), UInt32(returned).littleEndianBytes())
        }
        let controlLength = Self.loadUInt64(answered, SocketABI.controlLengthOffset)
        guard controlLength <= UInt64(controlRoom) else {
            throw SupervisorError.guestResultOutOfRange(call: spec.name, result: Int64(clamping: controlLength), limit: Int64(controlRoom))
        }
        try memory.write(controlPointer, try regionBytes(controlOffset, Int(controlLength)))
        try memory.write(headerAddress + UInt64(SocketABI.controlLengthOffset), controlLength.littleEndianBytes())
        try memory.write(headerAddress + UInt64(SocketABI.flagsOffset), Array(answered[SocketABI.flagsOffset ..< SocketABI.flagsOffset + 4]))
        return .value(result)
    }

    func receiveFrom(_ spec: SyscallSpec, _ request: SyscallRequest, _ socket: UInt64,
                     _ validate: () throws -> Void) throws -> SyscallReply {
        let a = request.arguments
        let memory = InspectorMemory(pid: request.pid)
        var cursor = RegionCursor(base: executor.regionAddress, size: executor.regionSize)
        var source: LengthedOutput?
        if a[4] != 0 {
            guard let output = try lengthedOutput(memory, buffer: a[4], length: a[5], capacity: SocketABI.addressStorage,
                                                  &cursor) else { return .error(EINVAL) }
            source = output
        }
        let pollOffset = try cursor.reserve(SocketABI.pollfdSize)
        let room = Int(min(a[2], UInt64(max(0, cursor.remaining - 8))))
        let dataOffset = try cursor.reserve(room)
        try validate()
        let result = try receiveWithoutParking(socket, flags: a[3], poll: cursor.address(pollOffset), pollOffset: pollOffset,
                                               call: spec.name, validate) { guestFlags in
            try guestCall(LinuxABI.Syscall.recvfrom,
                          [socket, cursor.address(dataOffset), UInt64(room), guestFlags,
                           source.map { cursor.address($0.bufferOffset) } ?? 0, source.map { cursor.address($0.lengthOffset) } ?? 0],
                          name: spec.name)
        }
        countRedirected(spec)
        if result < 0 { return .error(Int32(-result)) }
        let copied = try Self.receivedCopy(result, room: room, flags: a[3], call: spec.name)
        try memory.write(a[1], try regionBytes(dataOffset, copied))
        if let source { try finish(source, limit: SocketABI.addressStorage, memory, call: spec.name) }
        return .value(result)
    }

    /// Runs `receive` so that S never parks in the guest: always with
    /// MSG_DONTWAIT; when the inspector wanted to wait (a blocking socket,
    /// no MSG_DONTWAIT) and nothing is there yet, S polls the socket for a
    /// bounded time (see `receiveWaitMilliseconds`).
    func receiveWithoutParking(_ socket: UInt64, flags: UInt64, poll: UInt64, pollOffset: Int, call: String,
                               _ validate: () throws -> Void, _ receive: (UInt64) throws -> Int64) throws -> Int64 {
        let again = -Int64(EAGAIN)
        var result = try receive(flags | SocketABI.messageDontWait)
        guard result == again, flags & SocketABI.messageDontWait == 0 else { return result }
        let status = try guestCall(LinuxABI.Syscall.fcntl, [socket, UInt64(Self.fcntlGetfl), 0], name: call)
        if status >= 0, UInt64(status) & ShadowPolicy.openNonBlocking != 0 { return result }
        let pollfd = UInt32(truncatingIfNeeded: socket).littleEndianBytes() + SocketABI.pollIn.littleEndianBytes() + [0, 0]
        var waited: UInt64 = 0
        while waited < Self.receiveWaitMilliseconds {
            try validate()
            try executor.writeRegion(offset: pollOffset, pollfd)
            let ready = try guestCall(LinuxABI.Syscall.poll, [poll, 1, Self.receivePollMilliseconds], name: call)
            waited += Self.receivePollMilliseconds
            if ready > 0 {
                result = try receive(flags | SocketABI.messageDontWait)
                if result != again { return result }
            } else if ready < 0, ready != -Int64(EINTR) {
                break
            }
        }
        if verbose { diagnostic("swvmm: \(call): no netlink answer from the guest within \(Self.receiveWaitMilliseconds) ms: EAGAIN") }
        return result
    }
}
