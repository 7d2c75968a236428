import CShadow
import Glibc
import XCTest
@testable import Shadow

/// The supervisor's decision for calls that act on the machine or another
/// process, driven directly (this process plays the inspector). Machine calls
/// that go to "the guest" reach a `RecordingGuest`, which runs none of them.
final class MachineCallTests: XCTestCase {
    let installer = RecordingInstaller()
    let sigterm: UInt64 = 15

    private func redirector(allowWrites: Bool, guest: RecordingGuest, lines: LineCollector? = nil) -> SyscallRedirector {
        SyscallRedirector(executor: guest, policy: ShadowPolicy(allowWrites: allowWrites), range: .standard,
                          verbose: lines != nil, diagnostic: { lines?.lines.append($0) })
    }

    private func answer(_ redirector: SyscallRedirector, _ n: Int, _ arguments: [UInt64]) -> SyscallReply {
        redirector.handle(SyscallRequest(number: n, arguments: arguments, pid: getpid()), installer: installer).reply
    }

    /// A process that is not this one's descendant: pid 1 (init, or the
    /// namespace's first process) is never the inspector's own.
    private let foreign: UInt64 = 1

    func testSignalToAnotherProcessIsRefusedWithoutAllowWrites() {
        let guest = RecordingGuest()
        let r = redirector(allowWrites: false, guest: guest)
        XCTAssertEqual(answer(r, LinuxABI.Syscall.kill, [foreign, sigterm]), .error(EPERM))
        XCTAssertEqual(answer(r, LinuxABI.Syscall.tgkill, [foreign, foreign, sigterm]), .error(EPERM))
        XCTAssertEqual(answer(r, LinuxABI.Syscall.kill, [UInt64(bitPattern: -1), sigterm]), .error(EPERM), "kill(-1) is every process")
        XCTAssertEqual(guest.machineCalls, [])
        XCTAssertEqual(guest.inner.calls, [], "nothing ran on this host")
    }

    func testSignalGoesToTheGuestWithAllowWrites() {
        let guest = RecordingGuest()
        let r = redirector(allowWrites: true, guest: guest)
        XCTAssertEqual(answer(r, LinuxABI.Syscall.kill, [foreign, sigterm]), .value(0))
        XCTAssertEqual(guest.machineCalls.first?.number, LinuxABI.Syscall.kill)
        XCTAssertEqual(guest.machineCalls.first.map { Array($0.arguments.prefix(2)) }, [foreign, sigterm])
    }

    func testSignalZeroIsAReadAndGoesToTheGuest() {
        let guest = RecordingGuest()
        let r = redirector(allowWrites: false, guest: guest)
        XCTAssertEqual(answer(r, LinuxABI.Syscall.kill, [foreign, 0]), .value(0))
        XCTAssertEqual(guest.machineCalls.map(\.number), [LinuxABI.Syscall.kill])
    }

    func testSignalsToTheInspectorsOwnProcessesRunLocally() throws {
        let threadID = UInt64(cshadow_raw_syscall(LinuxABI.Syscall.gettid, 0, 0, 0, 0, 0, 0))
        let guest = RecordingGuest()
        let r = redirector(allowWrites: false, guest: guest)
        XCTAssertEqual(answer(r, LinuxABI.Syscall.kill, [UInt64(getpid()), sigterm]), .continueLocally)
        XCTAssertEqual(answer(r, LinuxABI.Syscall.tgkill, [UInt64(getpid()), threadID, sigterm]), .continueLocally, "raise()")
        XCTAssertEqual(answer(r, LinuxABI.Syscall.tkill, [threadID, sigterm]), .continueLocally)
        // A child of this process is its own, too.
        var child: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup("sleep"), strdup("30"), nil]
        defer { argv.forEach { free($0) } }
        XCTAssertEqual(posix_spawnp(&child, "sleep", nil, nil, &argv, environ), 0)
        defer { Glibc.kill(child, SIGKILL); var s: Int32 = 0; waitpid(child, &s, 0) }
        XCTAssertEqual(answer(r, LinuxABI.Syscall.kill, [UInt64(child), sigterm]), .continueLocally)
        XCTAssertEqual(guest.machineCalls, [])
    }

    func testSethostnameIsRefusedOrGoesToTheGuest() throws {
        let name = Array("swvmm-test".utf8)
        try name.withUnsafeBufferPointer { buffer in
            let address = UInt64(UInt(bitPattern: buffer.baseAddress))
            let refusedGuest = RecordingGuest()
            let lines = LineCollector()
            let refusing = redirector(allowWrites: false, guest: refusedGuest, lines: lines)
            XCTAssertEqual(answer(refusing, LinuxABI.Syscall.sethostname, [address, UInt64(name.count)]), .error(EPERM))
            XCTAssertEqual(answer(refusing, LinuxABI.Syscall.sethostname, [address, UInt64(name.count)]), .error(EPERM))
            XCTAssertEqual(lines.lines.count, 1, "said once: \(lines.lines)")
            XCTAssertTrue(lines.lines.first?.contains("--allow-writes") ?? false, "\(lines.lines)")
            XCTAssertEqual(refusedGuest.machineCalls, [])

            let guest = RecordingGuest()
            let allowing = redirector(allowWrites: true, guest: guest)
            XCTAssertEqual(answer(allowing, LinuxABI.Syscall.sethostname, [address, UInt64(name.count)]), .value(0))
            let call = try XCTUnwrap(guest.machineCalls.first)
            XCTAssertEqual(call.number, LinuxABI.Syscall.sethostname)
            XCTAssertEqual(call.arguments[1], UInt64(name.count))
            XCTAssertEqual(try guest.regionBytes(at: call.arguments[0], count: name.count), name, "the name was copied into the guest region")
        }
    }

    func testSyslogReadsGoToTheGuestAndClearingIsRefused() {
        let guest = RecordingGuest()
        let r = redirector(allowWrites: false, guest: guest)
        XCTAssertEqual(answer(r, LinuxABI.Syscall.syslog, [10 /* SIZE_BUFFER */, 0, 0]), .value(0))
        XCTAssertEqual(answer(r, LinuxABI.Syscall.syslog, [5 /* CLEAR */, 0, 0]), .error(EPERM))
        XCTAssertEqual(answer(r, LinuxABI.Syscall.syslog, [4 /* READ_CLEAR */, 0, 0]), .error(EPERM))
        XCTAssertEqual(guest.machineCalls.map(\.number), [LinuxABI.Syscall.syslog])
    }

    func testPriorityOfAUserIsNeverTheInspectorsOwn() {
        let guest = RecordingGuest()
        let r = redirector(allowWrites: false, guest: guest)
        // PRIO_USER (2) with who 0: every process of this user on the machine.
        XCTAssertEqual(answer(r, LinuxABI.Syscall.setpriority, [2, 0, 5]), .error(EPERM))
        // PRIO_PROCESS (0) with who 0: the caller itself.
        XCTAssertEqual(answer(r, LinuxABI.Syscall.setpriority, [0, 0, 0]), .continueLocally)
        XCTAssertEqual(answer(r, LinuxABI.Syscall.schedSetaffinity, [foreign, 8, 0]), .error(EPERM))
    }

    /// psmisc's killall: pidfd_send_signal on a guest /proc/PID directory fd.
    func testPidfdSignalOnAGuestProcessDirectoryGoesToTheGuest() {
        let guest = RecordingGuest()
        let r = redirector(allowWrites: false, guest: guest)
        r.table.insert(local: 1000, .init(guestFd: 77, path: "/proc/148"))
        XCTAssertEqual(answer(r, LinuxABI.Syscall.pidfdSendSignal, [1000, 0, 0, 0]), .value(0), "signal 0 is a read")
        XCTAssertEqual(guest.machineCalls.first.map { Array($0.arguments.prefix(3)) }, [77, 0, 0], "the guest fd, NULL siginfo")
        XCTAssertEqual(answer(r, LinuxABI.Syscall.pidfdSendSignal, [1000, sigterm, 0, 0]), .error(EPERM), "a real signal needs --allow-writes")
        XCTAssertEqual(answer(r, LinuxABI.Syscall.pidfdSendSignal, [3, 0, 0, 0]), .error(EPERM), "a local pidfd names no guest process")
        XCTAssertEqual(guest.machineCalls.count, 1)
        XCTAssertEqual(guest.inner.calls, [])
    }

    func testNotRedirectedCallsAreRefusedEvenWithAllowWrites() {
        let guest = RecordingGuest()
        let r = redirector(allowWrites: true, guest: guest)
        XCTAssertEqual(answer(r, LinuxABI.Syscall.ptrace, [16 /* PTRACE_ATTACH */, foreign, 0, 0]), .error(EPERM))
        XCTAssertEqual(answer(r, LinuxABI.Syscall.processVmReadv, [foreign, 0, 0, 0, 0, 0]), .error(EPERM))
        XCTAssertEqual(answer(r, LinuxABI.Syscall.pidfdOpen, [foreign, 0]), .error(EPERM))
        XCTAssertEqual(answer(r, LinuxABI.Syscall.ptrace, [0 /* PTRACE_TRACEME */, 0, 0, 0]), .continueLocally)
        XCTAssertEqual(answer(r, LinuxABI.Syscall.umount2, [0 /* NULL path */, 0]), .error(EPERM), "never local")
        XCTAssertEqual(guest.machineCalls, [])
        XCTAssertEqual(guest.inner.calls, [])
    }
}

/// Collects --verbose lines.
final class LineCollector {
    var lines: [String] = []
}
