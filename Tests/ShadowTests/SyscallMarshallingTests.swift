import CShadow
import Glibc
import XCTest
@testable import Shadow

/// Executor that returns a fixed (hostile) result and fills the region with 0x5A.
final class HostileExecutor: GuestSyscallExecutor {
    let inner = LocalExecutor(regionSize: 8192)
    var result: Int64
    init(result: Int64) { self.result = result }
    var regionAddress: UInt64 { inner.regionAddress }
    var regionSize: Int { inner.regionSize }
    func writeRegion(offset: Int, _ bytes: [UInt8]) throws { try inner.writeRegion(offset: offset, bytes) }
    func readRegion(offset: Int, count: Int) throws -> [UInt8] { [UInt8](repeating: 0x5A, count: count) }
    func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 { result }
}

/// Stands in for SECCOMP_IOCTL_NOTIF_ADDFD, which needs a trapped call of a
/// supervised inspector that these tests do not have: records each install.
final class RecordingInstaller: GuestFdInstaller {
    struct Install: Equatable { var local: Int32; var cloexec: Bool }
    private(set) var installs: [Install] = []
    /// Local fds the inspector holds.
    var inUse: Set<Int32> = []
    /// -errno to fail installs with, or nil.
    var failure: Int32? = nil
    func isInUse(_ local: Int32) -> Bool { inUse.contains(local) }
    func install(at local: Int32, cloexec: Bool) -> Int32 {
        installs.append(Install(local: local, cloexec: cloexec))
        return failure ?? local
    }
    /// Copies of local files, with what they held when installed.
    private(set) var fileInstalls: [(local: Int32, contents: [UInt8])] = []
    func install(file: Int32, at local: Int32, cloexec: Bool) -> Int32 {
        installs.append(Install(local: local, cloexec: cloexec))
        var contents: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 4096)
        var offset: off_t = 0
        while true {
            let n = pread(file, &chunk, chunk.count, offset)
            if n <= 0 { break }
            contents += chunk[0 ..< n]
            offset += off_t(n)
        }
        fileInstalls.append((local, contents))
        return failure ?? local
    }
}

/// Each redirected call's marshalling, against this process's own memory
/// (process_vm_readv/writev on ourselves) and a LocalExecutor: the "guest"
/// runs the call on this host, so results must equal the direct call.
final class SyscallMarshallingTests: XCTestCase {
    let pid = getpid()
    let executor = LocalExecutor(regionSize: 16384)
    lazy var redirector = SyscallRedirector(executor: executor, policy: ShadowPolicy(), range: .standard)
    let installer = RecordingInstaller()

    private func request(_ n: Int, _ args: [UInt64]) -> SyscallRequest { SyscallRequest(number: n, arguments: args, pid: pid) }

    private func cString(_ s: String, _ body: (UInt64) throws -> Void) rethrows {
        try s.withCString { try body(UInt64(UInt(bitPattern: $0))) }
    }

    /// The reply to `request`, placeholders going to `installer`.
    private func reply(_ request: SyscallRequest, on redirector: SyscallRedirector? = nil) -> SyscallReply {
        (redirector ?? self.redirector).handle(request, installer: installer).reply
    }

    /// Opens `path` through the redirector; returns the local placeholder number.
    private func openGuest(_ path: String, flags: Int32 = O_RDONLY) throws -> Int32 {
        var answer = SyscallReply.continueLocally
        cString(path) { answer = reply(request(LinuxABI.Syscall.openat, [UInt64(bitPattern: -100), $0, UInt64(flags), 0])) }
        guard case .value(let local) = answer, let entry = redirector.table.entry(local: Int32(local)) else {
            XCTFail("openat \(path): \(answer)")
            return -1
        }
        XCTAssertEqual(installer.installs.last?.local, Int32(local))
        XCTAssertEqual(entry.path, path)
        return Int32(local)
    }

    func testOpenReadCloseProcVersion() throws {
        let local = try openGuest("/proc/version")
        let expected = try String(contentsOfFileAt: "/proc/version")
        try withBuffer(4096) { address, raw in
            let answer = reply(request(LinuxABI.Syscall.read, [UInt64(local), address, 4096]))
            guard case .value(let n) = answer else { return XCTFail("\(answer)") }
            XCTAssertEqual(String(decoding: raw.prefix(Int(n)), as: UTF8.self), expected)
            XCTAssertEqual(raw[Int(n)], 0xAA, "nothing written past the result")
        }
        let g = redirector.table.entry(local: local)!.guestFd
        XCTAssertEqual(reply(request(LinuxABI.Syscall.close, [UInt64(local)])), .continueLocally)
        XCTAssertNil(redirector.table.entry(local: local))
        XCTAssertEqual(fcntl(g, F_GETFD), -1, "guest fd closed")
    }

    func testLocalPathContinues() {
        cString("/etc/ld.so.cache") {
            XCTAssertEqual(reply(request(LinuxABI.Syscall.openat, [UInt64(bitPattern: -100), $0, 0, 0])), .continueLocally)
        }
        XCTAssertEqual(reply(request(LinuxABI.Syscall.read, [3, 0, 10])), .continueLocally, "fd 3 is not a guest fd")
    }

    func testWriteOpenRefused() {
        cString("/proc/sys/kernel/hostname") {
            XCTAssertEqual(reply(request(LinuxABI.Syscall.openat, [UInt64(bitPattern: -100), $0, UInt64(O_WRONLY), 0])), .error(EROFS))
            XCTAssertEqual(reply(request(LinuxABI.Syscall.open, [$0, UInt64(O_RDWR | O_CREAT), 0o644])), .error(EROFS))
        }
    }

    func testReadIsClampedToRegionAndToRequest() throws {
        let local = try openGuest("/proc/self/maps")
        try withBuffer(100) { address, raw in
            guard case .value(let n) = reply(request(LinuxABI.Syscall.read, [UInt64(local), address, 10])) else { return XCTFail() }
            XCTAssertEqual(n, 10)
            XCTAssertTrue(raw[10...].allSatisfy { $0 == 0xAA })
        }
        try withBuffer(1 << 20) { address, _ in
            guard case .value(let n) = reply(request(LinuxABI.Syscall.read, [UInt64(local), address, 1 << 20])) else { return XCTFail() }
            XCTAssertLessThanOrEqual(Int(n), executor.regionSize, "a short read, never beyond the region")
        }
        redirector.closeAllGuestFds()
    }

    func testHostileResultNeverOverwrites() throws {
        let hostile = HostileExecutor(result: 5000)
        let r = SyscallRedirector(executor: hostile, policy: ShadowPolicy(), range: .standard)
        r.table.insert(local: 1000, .init(guestFd: 77, path: "/proc/x"))
        try withBuffer(64) { address, raw in
            XCTAssertEqual(reply(request(LinuxABI.Syscall.read, [1000, address, 16]), on: r), .error(EIO))
            XCTAssertTrue(raw.allSatisfy { $0 == 0xAA })
            // A struct call must return 0; anything else is refused without copying.
            hostile.result = 3
            XCTAssertEqual(reply(request(LinuxABI.Syscall.uname, [address]), on: r), .error(EIO))
            XCTAssertTrue(raw.allSatisfy { $0 == 0xAA })
            hostile.result = -99999
            XCTAssertEqual(reply(request(LinuxABI.Syscall.fstat, [1000, address]), on: r), .error(EIO))
            hostile.result = -Int64(ENOENT)
            XCTAssertEqual(reply(request(LinuxABI.Syscall.fstat, [1000, address]), on: r), .error(ENOENT))
        }
        // A "guest fd" that is not an fd number.
        hostile.result = Int64(Int32.max) + 1
        cString("/proc/version") {
            XCTAssertEqual(reply(request(LinuxABI.Syscall.openat, [UInt64(bitPattern: -100), $0, 0, 0]), on: r), .error(EIO))
        }
    }

    func testUnameSysinfoStatfs() throws {
        try withBuffer(KernelStructSize.utsname + 8) { address, raw in
            XCTAssertEqual(reply(request(LinuxABI.Syscall.uname, [address])), .value(0))
            var u = utsname()
            uname(&u)
            let sys = withUnsafeBytes(of: &u.sysname) { Array($0) }
            XCTAssertEqual(Array(raw.prefix(65)), sys)
            XCTAssertTrue(raw[KernelStructSize.utsname...].allSatisfy { $0 == 0xAA })
        }
        try withBuffer(KernelStructSize.sysinfo + 8) { address, raw in
            XCTAssertEqual(reply(request(LinuxABI.Syscall.sysinfo, [address])), .value(0))
            XCTAssertTrue(raw[KernelStructSize.sysinfo...].allSatisfy { $0 == 0xAA })
        }
        try withBuffer(KernelStructSize.statfs) { address, raw in
            // statfs of a local path still goes to the guest (df).
            cString("/") { XCTAssertEqual(reply(request(LinuxABI.Syscall.statfs, [$0, address])), .value(0)) }
            // f_type matches a direct statfs("/") (raw syscall 137).
            try withBuffer(KernelStructSize.statfs) { direct, rawDirect in
                cString("/") { XCTAssertEqual(cshadow_raw_syscall(137, $0, direct, 0, 0, 0, 0), 0) }
                XCTAssertEqual(raw.load(as: Int.self), rawDirect.load(as: Int.self))
            }
        }
        XCTAssertEqual(reply(request(LinuxABI.Syscall.uname, [0])), .error(EFAULT))
    }

    func testStatFamilyAndReadlink() throws {
        try withBuffer(KernelStructSize.statx) { address, raw in
            cString("/proc/1") {
                XCTAssertEqual(reply(request(LinuxABI.Syscall.stat, [$0, address])), .value(0))
                XCTAssertEqual(reply(request(LinuxABI.Syscall.newfstatat, [UInt64(bitPattern: -100), $0, address, 0])), .value(0))
                XCTAssertEqual(reply(request(LinuxABI.Syscall.statx, [UInt64(bitPattern: -100), $0, 0, 0xfff, address])), .value(0))
                XCTAssertEqual(reply(request(LinuxABI.Syscall.access, [$0, UInt64(R_OK)])), .value(0))
            }
        }
        try withBuffer(64) { address, raw in
            cString("/proc/self") {
                guard case .value(let n) = reply(request(LinuxABI.Syscall.readlink, [$0, address, 4])) else { return XCTFail() }
                // The link is this process's pid: fewer than 4 digits on a young system.
                let length = min(4, String(getpid()).utf8.count)
                XCTAssertEqual(n, Int64(length), "truncated to bufsiz")
                XCTAssertEqual(Array(raw.prefix(length)), Array(String(getpid()).utf8.prefix(length)))
                XCTAssertEqual(raw[length], 0xAA)
                XCTAssertEqual(reply(request(LinuxABI.Syscall.readlink, [$0, address, UInt64(UInt32.max)])), .error(EINVAL))
            }
        }
    }

    func testReadvScattersOneGuestRead() throws {
        let local = try openGuest("/proc/version")
        let expected = Array(try String(contentsOfFileAt: "/proc/version").utf8)
        try withBuffer(8) { a, rawA in
            try withBuffer(4096) { b, rawB in
                var iov = [a, 8, b, 4096]
                let answer = iov.withUnsafeMutableBytes { reply(request(LinuxABI.Syscall.readv, [UInt64(local), UInt64(UInt(bitPattern: $0.baseAddress)), 2])) }
                guard case .value(let n) = answer else { return XCTFail("\(answer)") }
                XCTAssertEqual(Int(n), expected.count)
                XCTAssertEqual(Array(rawA) + Array(rawB.prefix(Int(n) - 8)), expected)
                iov[1] = UInt64.max
                let bad = iov.withUnsafeMutableBytes { reply(request(LinuxABI.Syscall.readv, [UInt64(local), UInt64(UInt(bitPattern: $0.baseAddress)), 2])) }
                XCTAssertEqual(bad, .error(EINVAL))
            }
        }
        redirector.closeAllGuestFds()
    }

    func testGetdentsLseekFstatDupFcntl() throws {
        let local = try openGuest("/proc", flags: O_RDONLY | O_DIRECTORY)
        try withBuffer(4096) { address, _ in
            guard case .value(let n) = reply(request(LinuxABI.Syscall.getdents64, [UInt64(local), address, 4096])) else { return XCTFail() }
            XCTAssertGreaterThan(n, 0)
            XCTAssertEqual(reply(request(LinuxABI.Syscall.lseek, [UInt64(local), 0, UInt64(SEEK_SET)])), .value(0))
            XCTAssertEqual(reply(request(LinuxABI.Syscall.fstat, [UInt64(local), address])), .value(0))
            XCTAssertEqual(reply(request(LinuxABI.Syscall.fstatfs, [UInt64(local), address])), .value(0))
        }
        // Duplicates: the lowest free number, the lowest ≥ the F_DUPFD_CLOEXEC
        // minimum (with close-on-exec), exactly dup2's target.
        installer.inUse = [local + 1]
        XCTAssertEqual(reply(request(LinuxABI.Syscall.dup, [UInt64(local)])), .value(Int64(local + 2)), "skips a local fd the inspector holds")
        XCTAssertEqual(installer.installs.last, .init(local: local + 2, cloexec: false))
        XCTAssertEqual(reply(request(LinuxABI.Syscall.fcntl, [UInt64(local), 1030, 1010])), .value(1010))
        XCTAssertEqual(installer.installs.last, .init(local: 1010, cloexec: true))
        XCTAssertEqual(reply(request(LinuxABI.Syscall.dup2, [UInt64(local), 1005])), .value(1005))
        XCTAssertEqual(installer.installs.last, .init(local: 1005, cloexec: false))
        XCTAssertEqual(redirector.table.entry(local: 1005)?.path, "/proc")
        XCTAssertEqual(reply(request(LinuxABI.Syscall.dup2, [UInt64(local), 5])), .error(EISDIR),
                       "outside the reserved range a guest fd is a copy of its contents: a directory has none")
        XCTAssertEqual(reply(request(LinuxABI.Syscall.fcntl, [UInt64(local), UInt64(F_GETFD), 0])), .continueLocally)
        guard case .value = reply(request(LinuxABI.Syscall.fcntl, [UInt64(local), UInt64(F_GETFL), 0])) else { return XCTFail() }
        // fchdir into it: getcwd answers the guest directory.
        XCTAssertEqual(reply(request(LinuxABI.Syscall.fchdir, [UInt64(local)])), .value(0))
        XCTAssertEqual(redirector.cwd, .guest("/proc"))
        try withBuffer(16) { address, raw in
            XCTAssertEqual(reply(request(LinuxABI.Syscall.getcwd, [address, 16])), .value(6))
            XCTAssertEqual(Array(raw.prefix(6)), Array("/proc\0".utf8))
            XCTAssertEqual(reply(request(LinuxABI.Syscall.getcwd, [address, 3])), .error(ERANGE))
        }
        redirector.closeAllGuestFds()
        XCTAssertEqual(redirector.table.count, 0)
    }

    func testUnknownCallOnGuestFdIsENOSYS() throws {
        let local = try openGuest("/proc/version")
        XCTAssertEqual(reply(request(LinuxABI.Syscall.mmap, [0, 4096, 1, 2, UInt64(local), 0])), .error(ENOSYS))
        XCTAssertEqual(reply(request(LinuxABI.Syscall.ftruncate, [UInt64(local), 0])), .error(EROFS))
        XCTAssertEqual(reply(request(LinuxABI.Syscall.mmap, [0, 4096, 1, 2, 3, 0])), .continueLocally)
        redirector.closeAllGuestFds()
    }

    func testFailedInstallClosesTheGuestFd() throws {
        installer.failure = -ENOENT
        var answer = SyscallReply.continueLocally
        cString("/proc/version") { answer = reply(request(LinuxABI.Syscall.openat, [UInt64(bitPattern: -100), $0, 0, 0])) }
        XCTAssertEqual(answer, .error(EINTR), "the inspector's call was interrupted meanwhile")
        XCTAssertEqual(redirector.table.count, 0)
        XCTAssertEqual(installer.installs.count, 1)
        XCTAssertEqual(executor.calls, [LinuxABI.Syscall.openat, LinuxABI.Syscall.close], "the guest fd was closed again")
    }

    func testOutcomes() throws {
        let local = try openGuest("/proc/version")
        XCTAssertEqual(redirector.handle(request(LinuxABI.Syscall.read, [3, 0, 10]), installer: installer).outcome, .continuedLocally)
        let close = redirector.handle(request(LinuxABI.Syscall.close, [UInt64(local)]), installer: installer)
        XCTAssertEqual(close, HandledCall(reply: .continueLocally, outcome: .redirected), "a guest close continues to close the placeholder")
        cString("/proc/sys/kernel/hostname") {
            XCTAssertEqual(redirector.handle(request(LinuxABI.Syscall.openat, [UInt64(bitPattern: -100), $0, UInt64(O_WRONLY), 0]),
                                             installer: installer).outcome, .refused)
        }
        XCTAssertEqual(redirector.handle(request(LinuxABI.Syscall.uname, [0]), installer: installer), HandledCall(reply: .error(EFAULT), outcome: .failed))
        XCTAssertEqual(redirector.counters.redirected, 2, "the open and the close")
        XCTAssertEqual(redirector.counters.refused, 1)
    }

    func testBadPathPointerIsEFAULT() {
        XCTAssertEqual(reply(request(LinuxABI.Syscall.openat, [UInt64(bitPattern: -100), 8, 0, 0])), .error(EFAULT))
    }
}

extension String {
    init(contentsOfFileAt path: String) throws {
        guard let f = fopen(path, "r") else { throw SupervisorError.systemCall("fopen \(path)", errno: errno) }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n == 0 { break }
            bytes += buffer[0..<n]
        }
        self = String(decoding: bytes, as: UTF8.self)
    }
}
