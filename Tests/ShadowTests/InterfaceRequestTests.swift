import CShadow
import Glibc
import XCTest
@testable import Shadow

/// Socket ioctls about network interfaces (ifconfig, netstat -i): trapped on
/// any fd, sent to the guest on S's own socket, never answered by the host.
/// The guest stand-in (`RecordingGuest`) runs non-machine calls on this host,
/// so a request that "went to the guest" shows as the executor's socket and
/// ioctl calls, and its answer is this host's loopback interface.
final class InterfaceRequestTests: XCTestCase {
    let installer = RecordingInstaller()
    /// SIOCGIFINDEX, SIOCSIFFLAGS and TCGETS (include/uapi/linux/sockios.h, asm-generic/ioctls.h).
    let getIndex: UInt64 = 0x8933, setFlags: UInt64 = 0x8914, terminalGet: UInt64 = 0x5401

    func testFilterTrapsInterfaceRequestsOnAnyFd() throws {
        let bpf = BPFInterpreter(program: try SeccompFilter.build(range: GuestFdRange(lowerBound: 1000, count: 64)))
        let n = LinuxABI.Syscall.ioctl
        XCTAssertEqual(try bpf.run(number: n, arguments: [3, 0x8913]), CSHADOW_RET_USER_NOTIF, "SIOCGIFFLAGS on a local socket")
        XCTAssertEqual(try bpf.run(number: n, arguments: [3, 0x890B]), CSHADOW_RET_USER_NOTIF, "SIOCADDRT")
        XCTAssertEqual(try bpf.run(number: n, arguments: [3, 0x89FF]), CSHADOW_RET_USER_NOTIF, "the last device request")
        XCTAssertEqual(try bpf.run(number: n, arguments: [3, 0x890A]), CSHADOW_RET_ALLOW, "below: the socket's own")
        XCTAssertEqual(try bpf.run(number: n, arguments: [3, 0x8A00]), CSHADOW_RET_ALLOW)
        XCTAssertEqual(try bpf.run(number: n, arguments: [1, terminalGet]), CSHADOW_RET_ALLOW, "a terminal ioctl stays untrapped")
        XCTAssertEqual(try bpf.run(number: n, arguments: [1000, terminalGet]), CSHADOW_RET_USER_NOTIF, "any ioctl on a guest fd")
    }

    func testInterfaceIndexIsAskedOnTheGuestSide() throws {
        let guest = RecordingGuest()
        let r = SyscallRedirector(executor: guest, policy: ShadowPolicy(), range: .standard)
        var ifreq = [UInt8](repeating: 0, count: 40)
        ifreq.replaceSubrange(0 ..< 2, with: Array("lo".utf8))
        ifreq.withUnsafeMutableBytes { raw in
            let address = UInt64(UInt(bitPattern: raw.baseAddress))
            let reply = r.handle(SyscallRequest(number: LinuxABI.Syscall.ioctl, arguments: [3, getIndex, address], pid: getpid()),
                                 installer: installer).reply
            XCTAssertEqual(reply, .value(0))
            XCTAssertEqual(Array(guest.inner.calls.suffix(2)), [LinuxABI.Syscall.socket, LinuxABI.Syscall.ioctl], "S's socket, then the request")
            let index = raw.load(fromByteOffset: 16, as: Int32.self)
            XCTAssertEqual(index, Int32(if_nametoindex("lo")), "the answer was copied back into the inspector's ifreq")
            // A second request reuses S's socket.
            _ = r.handle(SyscallRequest(number: LinuxABI.Syscall.ioctl, arguments: [3, getIndex, address], pid: getpid()), installer: installer)
            XCTAssertEqual(guest.inner.calls.filter { $0 == LinuxABI.Syscall.socket }.count, 1)
            let callsBefore = guest.inner.calls.count
            XCTAssertEqual(r.handle(SyscallRequest(number: LinuxABI.Syscall.ioctl, arguments: [3, setFlags, address], pid: getpid()),
                                    installer: installer).reply, .error(EOPNOTSUPP), "a change is never made")
            XCTAssertEqual(guest.inner.calls.count, callsBefore)
        }
        r.closeAllGuestFds()
        XCTAssertEqual(guest.inner.calls.last, LinuxABI.Syscall.close, "S's socket is closed with the guest fds")
    }

    func testOtherIoctlsStayLocalAndGuestFdsAreRefused() {
        let guest = RecordingGuest()
        let r = SyscallRedirector(executor: guest, policy: ShadowPolicy(), range: .standard)
        XCTAssertEqual(r.handle(SyscallRequest(number: LinuxABI.Syscall.ioctl, arguments: [1, terminalGet, 0], pid: getpid()),
                                installer: installer).reply, .continueLocally)
        r.table.insert(local: 1000, .init(guestFd: 77, path: "/proc/x"))
        XCTAssertEqual(r.handle(SyscallRequest(number: LinuxABI.Syscall.ioctl, arguments: [1000, terminalGet, 0], pid: getpid()),
                                installer: installer).reply, .error(ENOSYS))
        XCTAssertEqual(guest.inner.calls, [])
    }
}
