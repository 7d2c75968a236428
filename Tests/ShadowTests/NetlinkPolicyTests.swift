import Glibc
import Guest
import XCTest
@testable import Shadow

/// Builds netlink messages as iproute2 and ss send them (include/uapi/linux/netlink.h).
enum NetlinkMessage {
    /// NLM_F_REQUEST, NLM_F_DUMP (ROOT | MATCH), NLM_F_CREATE, NLM_F_EXCL.
    static let request: UInt16 = 0x1, dump: UInt16 = 0x300, create: UInt16 = 0x400, exclusive: UInt16 = 0x200
    /// rtnetlink types (include/uapi/linux/rtnetlink.h) and sock_diag's.
    static let getLink: UInt16 = 18, setLink: UInt16 = 19, newAddress: UInt16 = 20, getAddress: UInt16 = 22
    static let deleteRoute: UInt16 = 25, getRoute: UInt16 = 26, socketDiagnosticsByFamily: UInt16 = 20, socketDestroy: UInt16 = 21

    /// One message: a header of `length` (default: header plus payload) and the payload.
    static func make(type: UInt16, flags: UInt16, payload: [UInt8] = [], length: UInt32? = nil) -> [UInt8] {
        let total = length ?? UInt32(NetlinkPolicy.headerLength + payload.count)
        var bytes = total.littleEndianBytes() + type.littleEndianBytes() + flags.littleEndianBytes()
        bytes += UInt32(7).littleEndianBytes() + UInt32(0).littleEndianBytes() + payload
        while bytes.count % 4 != 0 { bytes.append(0) }
        return bytes
    }

    /// A `struct sockaddr_nl` for `port` and `groups`.
    static func address(port: UInt32, groups: UInt32 = 0) -> [UInt8] {
        UInt16(16).littleEndianBytes() + [0, 0] + port.littleEndianBytes() + groups.littleEndianBytes()
    }
}

/// What may be said to the guest kernel over netlink: reads only, to the kernel only.
final class NetlinkPolicyTests: XCTestCase {
    typealias M = NetlinkMessage

    func testOnlyRouteAndSocketDiagnosticsAreOpened() {
        XCTAssertEqual(try NetlinkPolicy.protocolOrRefusal(0).get(), .route)
        XCTAssertEqual(try NetlinkPolicy.protocolOrRefusal(4).get(), .socketDiagnostics)
        for other: UInt32 in [9 /* NETLINK_AUDIT */, 15 /* NETLINK_KOBJECT_UEVENT */, 16 /* NETLINK_GENERIC */, 0xFFFF_FFFF] {
            guard case .failure(let refusal) = NetlinkPolicy.protocolOrRefusal(other) else { XCTFail("\(other) opened"); continue }
            XCTAssertEqual(refusal.errno, EPROTONOSUPPORT)
            XCTAssertTrue(refusal.why.contains("\(other)"), refusal.why)
        }
    }

    func testDumpsAndGetsAreReads() {
        XCTAssertNil(NetlinkPolicy.refusal(of: M.make(type: M.getLink, flags: M.request | M.dump, payload: [UInt8](repeating: 0, count: 24)), on: .route))
        XCTAssertNil(NetlinkPolicy.refusal(of: M.make(type: M.getRoute, flags: M.request), on: .route), "ip route get: a read without DUMP")
        XCTAssertNil(NetlinkPolicy.refusal(of: M.make(type: M.socketDiagnosticsByFamily, flags: M.request | M.dump),
                                           on: .socketDiagnostics))
        // iproute2's RTM_GETADDR: a 24-byte request in a 152-byte buffer whose next header is all zero (the kernel stops there).
        let getAddress = M.make(type: M.getAddress, flags: M.request | M.dump, payload: [UInt8](repeating: 0, count: 8))
        XCTAssertNil(NetlinkPolicy.refusal(of: getAddress + [UInt8](repeating: 0, count: 128), on: .route))
    }

    func testChangesAreRefusedWithEPERM() throws {
        for (type, flags) in [(M.newAddress, M.request | M.create | M.exclusive), (M.setLink, M.request), (M.deleteRoute, M.request)] {
            let refusal = try XCTUnwrap(NetlinkPolicy.refusal(of: M.make(type: type, flags: flags), on: .route), "type \(type)")
            XCTAssertEqual(refusal.errno, EPERM)
            XCTAssertTrue(refusal.why.contains("type \(type)"), refusal.why)
        }
        XCTAssertEqual(NetlinkPolicy.refusal(of: M.make(type: M.socketDestroy, flags: M.request), on: .socketDiagnostics)?.errno, EPERM,
                       "SOCK_DESTROY closes a guest socket")
        // A change hidden behind a read in the same buffer.
        let hidden = M.make(type: M.getLink, flags: M.request | M.dump) + M.make(type: M.newAddress, flags: M.request | M.create)
        XCTAssertEqual(NetlinkPolicy.refusal(of: hidden, on: .route)?.errno, EPERM)
        // A message with an unaligned length: the next one starts at the aligned offset, as in the kernel.
        let unaligned = M.make(type: M.getLink, flags: M.request, payload: [1], length: 17) + M.make(type: M.setLink, flags: M.request)
        XCTAssertEqual(NetlinkPolicy.refusal(of: unaligned, on: .route)?.errno, EPERM)
    }

    /// `ip link show DEV` first sends an RTM_NEWLINK naming no device: the kernel answers ENODEV, nothing changes.
    func testIproute2NewLinkProbeIsLetThrough() {
        let ack: UInt16 = 0x4
        let probe = M.make(type: 16, flags: M.request | ack, payload: [UInt8](repeating: 0, count: 16))
        XCTAssertNil(NetlinkPolicy.refusal(of: probe, on: .route))
        var naming = [UInt8](repeating: 0, count: 16)
        naming.replaceSubrange(4 ..< 8, with: Int32(1).littleEndianBytes())
        XCTAssertEqual(NetlinkPolicy.refusal(of: M.make(type: 16, flags: M.request | ack, payload: naming), on: .route)?.errno, EPERM,
                       "a device index: ip link set")
        let mtu: [UInt8] = UInt16(8).littleEndianBytes() + UInt16(4 /* IFLA_MTU */).littleEndianBytes() + UInt32(1280).littleEndianBytes()
        XCTAssertEqual(NetlinkPolicy.refusal(of: M.make(type: 16, flags: M.request, payload: [UInt8](repeating: 0, count: 16) + mtu),
                                             on: .route)?.errno, EPERM, "attributes")
        XCTAssertEqual(NetlinkPolicy.refusal(of: M.make(type: 16, flags: M.request | M.create, payload: [UInt8](repeating: 0, count: 16)),
                                             on: .route)?.errno, EPERM, "NLM_F_CREATE")
        XCTAssertEqual(NetlinkPolicy.refusal(of: probe, on: .socketDiagnostics)?.errno, EPERM, "type 16 means nothing to sock_diag")
    }

    /// What the kernel never acts on is not refused; no length can make the walk fail.
    func testMessagesTheKernelSkipsAndHostileLengths() {
        XCTAssertNil(NetlinkPolicy.refusal(of: M.make(type: M.newAddress, flags: 0), on: .route), "no NLM_F_REQUEST: skipped")
        XCTAssertNil(NetlinkPolicy.refusal(of: M.make(type: 3 /* NLMSG_DONE */, flags: M.request), on: .route), "control type")
        for length: UInt32 in [0, 15, 0xFFFF_FFFF, 1 << 31, 1000] {
            // The kernel stops at a header shorter than itself or longer than the buffer: what follows never runs.
            let bytes = M.make(type: M.getLink, flags: M.request, length: length) + M.make(type: M.newAddress, flags: M.request)
            XCTAssertNil(NetlinkPolicy.refusal(of: bytes, on: .route), "length \(length)")
        }
        XCTAssertNil(NetlinkPolicy.refusal(of: [], on: .route))
        XCTAssertNil(NetlinkPolicy.refusal(of: [0x20, 0, 0, 0, 20, 0], on: .route), "shorter than a header")
    }

    func testOnlyTheGuestKernelIsAddressed() {
        XCTAssertNil(NetlinkPolicy.refusal(ofDestination: nil))
        XCTAssertNil(NetlinkPolicy.refusal(ofDestination: M.address(port: 0)))
        XCTAssertEqual(NetlinkPolicy.refusal(ofDestination: M.address(port: 4242))?.errno, EPERM, "another process's socket")
        XCTAssertEqual(NetlinkPolicy.refusal(ofDestination: M.address(port: 0, groups: 1))?.errno, EPERM, "a multicast group")
    }

    func testSocketOptionsThatOnlyTuneTheSocket() {
        XCTAssertNil(NetlinkPolicy.refusal(ofOptionLevel: NetlinkPolicy.levelSocket, option: SO_RCVBUF))
        XCTAssertNil(NetlinkPolicy.refusal(ofOptionLevel: NetlinkPolicy.levelNetlink, option: 11 /* NETLINK_EXT_ACK */))
        XCTAssertEqual(NetlinkPolicy.refusal(ofOptionLevel: NetlinkPolicy.levelSocket, option: SO_ATTACH_FILTER)?.errno, ENOPROTOOPT,
                       "a filter program is a pointer into the inspector's memory")
        XCTAssertEqual(NetlinkPolicy.refusal(ofOptionLevel: 0 /* SOL_IP */, option: 1)?.errno, ENOPROTOOPT)
    }
}
