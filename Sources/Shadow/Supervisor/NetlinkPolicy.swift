import Glibc
import Guest

/// The netlink protocols an inspector may open in the guest: both only read
/// the machine when asked with the messages `NetlinkPolicy` lets through.
public enum NetlinkProtocol: UInt32, Sendable, CaseIterable {
    /// NETLINK_ROUTE (include/uapi/linux/netlink.h): links, addresses, routes, neighbours (`ip`).
    case route = 0
    /// NETLINK_SOCK_DIAG (include/uapi/linux/netlink.h): the machine's sockets (`ss`).
    case socketDiagnostics = 4

    /// How `--verbose` and the fd table name it.
    public var name: String {
        switch self {
        case .route: return "NETLINK_ROUTE"
        case .socketDiagnostics: return "NETLINK_SOCK_DIAG"
        }
    }
}

/// What an inspector may say to the guest kernel over netlink: requests that
/// read (rtnetlink's RTM_GET* kinds, sock_diag's dumps), addressed to the
/// kernel. Anything that would change the guest's network configuration, or
/// reach another process there, is refused with a reason.
public enum NetlinkPolicy {
    /// `struct nlmsghdr` (include/uapi/linux/netlink.h): u32 length, u16 type,
    /// u16 flags, u32 sequence, u32 port id.
    public static let headerLength = 16
    static let typeOffset = 4
    static let flagsOffset = 6
    /// NLMSG_ALIGNTO.
    static let alignment = 4
    /// NLMSG_MIN_TYPE: types below are control messages (NOOP, ERROR, DONE,
    /// OVERRUN) the kernel skips.
    static let minimumType: UInt16 = 0x10
    /// NLM_F_REQUEST: without it the kernel skips the message.
    static let requestFlag: UInt16 = 0x1
    /// rtnetlink message kinds: the low two bits of the type (RTM_BASE is 16;
    /// include/net/rtnetlink.h `rtnl_msgtype_kind`): NEW 0, DEL 1, GET 2, SET 3.
    /// The kernel itself asks CAP_NET_ADMIN for every kind but GET.
    static let routeKindMask: UInt16 = 0x3
    static let routeKindGet: UInt16 = 0x2
    /// sock_diag requests (include/uapi/linux/inet_diag.h, sock_diag.h):
    /// TCPDIAG_GETSOCK and DCCPDIAG_GETSOCK (the old inet_diag dumps) and
    /// SOCK_DIAG_BY_FAMILY read; SOCK_DESTROY (21) closes sockets.
    static let socketDiagnosticsReads: Set<UInt16> = [18, 19, 20]
    /// `struct sockaddr_nl` (include/uapi/linux/netlink.h): u16 family, u16
    /// pad, u32 port id, u32 multicast groups.
    public static let addressLength = 12
    static let addressPortOffset = 4
    static let addressGroupsOffset = 8

    /// The protocol for socket(2)'s third argument, or why it is refused.
    public static func protocolOrRefusal(_ raw: UInt32) -> Result<NetlinkProtocol, Refusal> {
        if let known = NetlinkProtocol(rawValue: raw) { return .success(known) }
        return .failure(Refusal(errno: EPROTONOSUPPORT,
                                why: "netlink protocol \(raw) is not redirected (only NETLINK_ROUTE and NETLINK_SOCK_DIAG, which read the guest)"))
    }

    /// Why the messages in `bytes`, sent on a socket of `netlinkProtocol`,
    /// must not reach the guest; nil if every message the kernel would act on
    /// is a read. Walks the buffer exactly as the kernel's `netlink_rcv_skb`
    /// does: it stops at a header shorter than 16 bytes or longer than what
    /// is left, skips messages without NLM_F_REQUEST and control types.
    public static func refusal(of bytes: [UInt8], on netlinkProtocol: NetlinkProtocol) -> Refusal? {
        var offset = 0
        while bytes.count - offset >= headerLength {
            let length = Int(UInt32(littleEndianBytes: bytes[offset ..< offset + 4]))
            guard length >= headerLength, length <= bytes.count - offset else { return nil }
            let type = UInt16(littleEndianBytes: bytes[(offset + typeOffset)...])
            let flags = UInt16(littleEndianBytes: bytes[(offset + flagsOffset)...])
            if flags & requestFlag != 0, type >= minimumType, !isRead(type: type, on: netlinkProtocol),
               !(netlinkProtocol == .route && isNewLinkProbe(bytes[offset ..< offset + length], flags: flags)) {
                return Refusal(errno: EPERM, why: "\(netlinkProtocol.name) message type \(type) (flags 0x\(String(flags, radix: 16))) "
                                                  + "would change the guest; only reads are redirected")
            }
            let aligned = (length + alignment - 1) & ~(alignment - 1)
            offset += min(aligned, bytes.count - offset)
        }
        return nil
    }

    /// RTM_NEWLINK; NLM_F_CREATE; `struct ifinfomsg` (include/uapi/linux/rtnetlink.h):
    /// u8 family, u8 pad, u16 type, s32 index, u32 flags, u32 change.
    static let routeNewLink: UInt16 = 16
    static let createFlag: UInt16 = 0x400
    static let interfaceInfoLength = 16
    static let interfaceIndexOffset = 4

    /// iproute2's probe before `ip link show DEV` (`iplink_have_newlink`): an
    /// RTM_NEWLINK naming no device (index 0, no attributes) and without
    /// NLM_F_CREATE. The kernel finds no device to change and may create none:
    /// it answers ENODEV and changes nothing (`rtnl_newlink`), so it is a read.
    static func isNewLinkProbe(_ message: ArraySlice<UInt8>, flags: UInt16) -> Bool {
        let bytes = Array(message)
        guard bytes.count == headerLength + interfaceInfoLength, flags & createFlag == 0,
              UInt16(littleEndianBytes: bytes[typeOffset...]) == routeNewLink else { return false }
        return Int32(littleEndianBytes: bytes[(headerLength + interfaceIndexOffset)...]) == 0
    }

    static func isRead(type: UInt16, on netlinkProtocol: NetlinkProtocol) -> Bool {
        switch netlinkProtocol {
        case .route: return type & routeKindMask == routeKindGet
        case .socketDiagnostics: return socketDiagnosticsReads.contains(type)
        }
    }

    /// Why a destination address (sendto, sendmsg's msg_name) is refused:
    /// only the guest kernel (port 0, no multicast groups) is addressed, never
    /// another process of the guest. Nil (no address) is the socket's default: the kernel.
    public static func refusal(ofDestination address: [UInt8]?) -> Refusal? {
        guard let address, !address.isEmpty else { return nil }
        guard address.count >= addressLength else { return nil } // The guest kernel answers EINVAL.
        let port = UInt32(littleEndianBytes: address[addressPortOffset...])
        let groups = UInt32(littleEndianBytes: address[addressGroupsOffset...])
        guard port == 0, groups == 0 else {
            return Refusal(errno: EPERM, why: "netlink message to port \(port), groups 0x\(String(groups, radix: 16)): only the guest kernel is addressed")
        }
        return nil
    }

    /// SOL_SOCKET (asm-generic/socket.h) and SOL_NETLINK (include/linux/socket.h).
    public static let levelSocket: Int32 = 1
    public static let levelNetlink: Int32 = 270
    /// SO_SNDBUF 7, SO_RCVBUF 8, SO_PASSCRED 16, SO_SNDBUFFORCE 32,
    /// SO_RCVBUFFORCE 33 (include/uapi/asm-generic/socket.h): plain ints about
    /// the socket itself. Options carrying pointers or fds (socket filters)
    /// would be read in S's memory: refused.
    static let socketOptions: Set<Int32> = [7, 8, 16, 32, 33]

    /// Why setsockopt(`level`, `option`) on a guest netlink socket is
    /// refused; nil when it only tunes the socket. Every SOL_NETLINK option
    /// takes an int about the socket (memberships, acks, strict checking).
    public static func refusal(ofOptionLevel level: Int32, option: Int32) -> Refusal? {
        if level == levelNetlink || (level == levelSocket && socketOptions.contains(option)) { return nil }
        return Refusal(errno: ENOPROTOOPT, why: "socket option \(option) at level \(level) on a guest netlink socket is not redirected")
    }

    /// A refused netlink request: the errno the inspector gets and why (`--verbose`).
    public struct Refusal: Error, Equatable, Sendable {
        public var errno: Int32
        public var why: String
    }
}
