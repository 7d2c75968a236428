import Foundation
import VMM
import XCTest

/// `swvmm shadow` input that needs no guest: options refused before anything
/// connects, and stop signals while it connects.
final class ShadowInputTests: XCTestCase {
    /// A relative --guest-path (or --local-path) is refused, not silently taken from /.
    func testRelativeGuestOrLocalPathIsRefused() throws {
        for option in ["--guest-path", "--local-path"] {
            let result = try Swvmm.run(["shadow", "--gdb", "unix:/nonexistent", option, "relative/dir", "--", "true"], timeout: 20)
            Swvmm.assertEndedCleanly(result)
            XCTAssertEqual(result.status, ExitStatus.usage, result.summary)
            XCTAssertTrue(result.stderr.contains("\(option) relative/dir"), result.summary)
            XCTAssertTrue(result.stderr.contains("absolute"), result.summary)
        }
    }

    // MARK: - Stop signals while connecting

    // The stub is a unix socket that is listened on but never answers: the kernel
    // completes the connection from the backlog and the handshake waits. swvmm
    // ends at once with a clear message and status 1, not after its 10 s timeout.
    func testSIGINTDuringTheHandshakeEndsTheRunAtOnce() throws {
        try assertStopsPromptly(on: SIGINT)
    }

    func testSIGTERMDuringTheHandshakeEndsTheRunAtOnce() throws {
        try assertStopsPromptly(on: SIGTERM)
    }

    private func assertStopsPromptly(on signal: Int32, file: StaticString = #filePath, line: UInt = #line) throws {
        try Swvmm.requireBinary()
        let scratch = try ScratchDirectory()
        let path = scratch.url.appendingPathComponent("silent.sock").path
        let listener = try Self.listen(at: path)
        defer { close(listener) }
        let result = try Swvmm.run(["shadow", "--gdb", "unix:\(path)", "--", "true"], timeout: 20,
                                   signal: (signal, after: 0.7))
        Swvmm.assertEndedCleanly(result, file: file, line: line)
        XCTAssertEqual(result.status, 1, result.summary, file: file, line: line)
        XCTAssertLessThan(result.seconds, 4, "the stop signal waited for the handshake timeout\n\(result.summary)",
                          file: file, line: line)
        XCTAssertTrue(result.stderr.contains("stopped on request"), result.summary, file: file, line: line)
    }

    /// A listening unix socket that never accepts.
    private static func listen(at path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 4) == 0 else {
            let code = errno
            close(fd)
            throw POSIXError(.init(rawValue: code) ?? .EIO)
        }
        return fd
    }
}
