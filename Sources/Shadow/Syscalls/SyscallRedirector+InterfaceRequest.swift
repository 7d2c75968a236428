import Glibc

/// Socket ioctls that ask the kernel about the machine's network interfaces,
/// ARP table and routes (include/uapi/linux/sockios.h). Whatever socket the
/// inspector asks on, the answer describes the machine, so on a local fd
/// they go to the guest (on a socket S opens for them) and never run on the host.
public enum InterfaceRequest {
    /// SIOCADDRT: the first machine-wide request (0x8900...0x890A are about the socket itself).
    public static let firstMachineRequest: UInt32 = 0x890B
    /// SIOCDEVPRIVATE + 15: the last device request.
    public static let lastMachineRequest: UInt32 = 0x89FF
    /// SIOCOUTQNSD and SIOCGSKNS ask about the caller's own socket;
    /// SIOCPROTOPRIVATE...+15 are its protocol's: local.
    static let ownSocketRequests: Set<UInt32> = [0x894B, 0x894C]
    static let protocolPrivate: ClosedRange<UInt32> = 0x89E0 ... 0x89EF

    /// `struct ifreq`: IFNAMSIZ (16) name + a 24-byte union (include/uapi/linux/if.h).
    static let ifreqSize = 40
    /// `struct arpreq` (include/uapi/linux/if_arp.h): three sockaddrs, flags, a 16-byte device name.
    static let arpreqSize = 68
    /// `struct ifconf`: an int length, padding, a buffer pointer at offset 8 (x86_64).
    static let ifconfSize = 16
    static let ifconfBufferOffset = 8

    /// SIOCGIFCONF.
    static let getInterfaceList: UInt32 = 0x8912
    /// Requests that read one fixed struct in place: SIOCGIFNAME, FLAGS, ADDR,
    /// DSTADDR, BRDADDR, NETMASK, METRIC, MTU, HWADDR, INDEX, PFLAGS, TXQLEN,
    /// MAP (ifreq) and SIOCGARP (arpreq).
    static let reads: [UInt32: Int] = [
        0x8910: ifreqSize, 0x8913: ifreqSize, 0x8915: ifreqSize, 0x8917: ifreqSize, 0x8919: ifreqSize,
        0x891B: ifreqSize, 0x891D: ifreqSize, 0x8921: ifreqSize, 0x8927: ifreqSize, 0x8933: ifreqSize,
        0x8935: ifreqSize, 0x8942: ifreqSize, 0x8970: ifreqSize, 0x8954: arpreqSize,
    ]
}

extension SyscallRedirector {
    /// AF_INET, SOCK_DGRAM | SOCK_CLOEXEC (include/linux/socket.h, net.h, fcntl.h).
    static let interfaceSocketArguments: [UInt64] = [2, 2 | 0o2000000, 0]

    /// ioctl on a local fd: the machine's interface requests go to the guest,
    /// everything else (terminals, the inspector's own sockets) runs locally.
    func interfaceRequest(_ spec: SyscallSpec, _ request: SyscallRequest, _ validate: () throws -> Void) throws -> SyscallReply {
        let command = UInt32(truncatingIfNeeded: request.arguments[1])
        guard (InterfaceRequest.firstMachineRequest ... InterfaceRequest.lastMachineRequest).contains(command),
              !InterfaceRequest.ownSocketRequests.contains(command),
              !InterfaceRequest.protocolPrivate.contains(command) else { return .continueLocally }
        let hex = "0x" + String(command, radix: 16)
        let address = request.arguments[2]
        if command == InterfaceRequest.getInterfaceList {
            return try interfaceList(spec, request, validate)
        }
        guard let size = InterfaceRequest.reads[command] else {
            return refuse(spec, EOPNOTSUPP, "network request \(hex) changes the machine or carries pointers: not redirected", once: true)
        }
        let memory = InspectorMemory(pid: request.pid)
        let input = try memory.read(address, count: size)
        var cursor = RegionCursor(base: executor.regionAddress, size: executor.regionSize)
        let offset = try cursor.reserve(size)
        try executor.writeRegion(offset: offset, input)
        try validate()
        let result = try guestCall(LinuxABI.Syscall.ioctl, [UInt64(try guestInterfaceSocket()), UInt64(command), cursor.address(offset)],
                                   name: spec.name)
        countRedirected(spec)
        if result < 0 { return .error(Int32(-result)) }
        try memory.write(address, try regionBytes(offset, size))
        return .value(result)
    }

    /// SIOCGIFCONF: the list of configured interfaces, into the inspector's
    /// buffer (never more than its `ifc_len` says); a NULL buffer asks for the length.
    private func interfaceList(_ spec: SyscallSpec, _ request: SyscallRequest, _ validate: () throws -> Void) throws -> SyscallReply {
        let memory = InspectorMemory(pid: request.pid)
        let address = request.arguments[2]
        var ifconf = try memory.read(address, count: InterfaceRequest.ifconfSize)
        let asked = Int(Int32(bitPattern: UInt32(Self.loadUInt64(ifconf, 0) & 0xFFFF_FFFF)))
        let buffer = Self.loadUInt64(ifconf, InterfaceRequest.ifconfBufferOffset)
        guard asked >= 0 else { return .error(EINVAL) }
        var cursor = RegionCursor(base: executor.regionAddress, size: executor.regionSize)
        let structOffset = try cursor.reserve(InterfaceRequest.ifconfSize)
        var guestStruct = ifconf
        var bufferOffset: Int?
        if buffer != 0 {
            let offset = try cursor.reserve(asked)
            bufferOffset = offset
            let pointer = withUnsafeBytes(of: cursor.address(offset).littleEndian, Array.init)
            guestStruct.replaceSubrange(InterfaceRequest.ifconfBufferOffset ..< InterfaceRequest.ifconfSize, with: pointer)
        }
        try executor.writeRegion(offset: structOffset, guestStruct)
        try validate()
        let result = try guestCall(LinuxABI.Syscall.ioctl,
                                   [UInt64(try guestInterfaceSocket()), UInt64(InterfaceRequest.getInterfaceList), cursor.address(structOffset)],
                                   name: spec.name)
        countRedirected(spec)
        if result < 0 { return .error(Int32(-result)) }
        let answered = try regionBytes(structOffset, InterfaceRequest.ifconfSize)
        let length = Int(Int32(bitPattern: UInt32(Self.loadUInt64(answered, 0) & 0xFFFF_FFFF)))
        if let bufferOffset {
            guard length >= 0, length <= asked else {
                throw SupervisorError.guestResultOutOfRange(call: spec.name, result: Int64(length), limit: Int64(asked))
            }
            try memory.write(buffer, try regionBytes(bufferOffset, length))
        }
        // The inspector's own buffer pointer stays; only the length is the guest's.
        ifconf.replaceSubrange(0 ..< 4, with: answered[0 ..< 4])
        try memory.write(address, ifconf)
        return .value(result)
    }

    /// S's socket for interface requests, opened on first use.
    private func guestInterfaceSocket() throws -> Int32 {
        if let socket = interfaceSocket { return socket }
        let socket = try guestFd(guestCall(LinuxABI.Syscall.socket, Self.interfaceSocketArguments, name: "socket"), "socket")
        interfaceSocket = socket
        return socket
    }
}
