import Glibc
import XCTest
@testable import Shadow

/// `cmd < /proc/x`: a guest fd dup2'd onto an fd below the reserved range
/// becomes a sealed local copy of the file's contents. The "guest" is a
/// LocalExecutor (this host runs the calls), so the copy must hold exactly
/// what this host's file holds; the installer stands in for ADDFD.
final class RedirectionCopyTests: XCTestCase {
    let executor = LocalExecutor(regionSize: 16384)
    let installer = RecordingInstaller()
    lazy var redirector = SyscallRedirector(executor: executor, policy: ShadowPolicy(), range: .standard)

    private func handle(_ n: Int, _ arguments: [UInt64]) -> SyscallReply {
        redirector.handle(SyscallRequest(number: n, arguments: arguments, pid: getpid()), installer: installer).reply
    }

    private func open(_ path: String) -> Int32? {
        let reply = path.withCString { handle(LinuxABI.Syscall.openat, [UInt64(bitPattern: -100), UInt64(UInt(bitPattern: $0)), 0, 0]) }
        guard case .value(let local) = reply else { XCTFail("openat \(path): \(reply)"); return nil }
        return Int32(local)
    }

    func testRedirectingAGuestFileOntoStandardInputGivesACopy() throws {
        let expected = Array(try String(contentsOfFile: "/proc/version", encoding: .utf8).utf8)
        guard let local = open("/proc/version") else { return }
        XCTAssertEqual(handle(LinuxABI.Syscall.dup2, [UInt64(local), 0]), .value(0))
        XCTAssertEqual(installer.fileInstalls.map(\.local), [0])
        XCTAssertEqual(installer.fileInstalls.first?.contents, expected)
        XCTAssertNil(redirector.table.entry(local: 0), "fd 0 is a local copy, not a guest fd")
        XCTAssertNotNil(redirector.table.entry(local: local), "the guest fd itself stays until closed")
        redirector.closeAllGuestFds()
    }

    /// A directory cannot be copied: the command gets the read's error and the
    /// user is told why, once, also without --verbose.
    func testADirectoryCannotBeCopiedAndTheUserIsTold() throws {
        final class Lines: @unchecked Sendable { var all: [String] = [] }
        let said = Lines()
        redirector = SyscallRedirector(executor: executor, policy: ShadowPolicy(), range: .standard, verbose: false,
                                       diagnostic: { said.all.append($0) })
        guard let local = open("/proc/sys") else { return }
        for _ in 0 ..< 2 {
            XCTAssertEqual(handle(LinuxABI.Syscall.dup2, [UInt64(local), 0]), .error(EISDIR))
        }
        XCTAssertEqual(installer.fileInstalls.count, 0)
        XCTAssertEqual(said.all.count, 1, "said once: \(said.all)")
        XCTAssertTrue(said.all.first?.contains("/proc/sys") == true && said.all.first?.contains("fd 0") == true, "\(said.all)")
        redirector.closeAllGuestFds()
    }
}
