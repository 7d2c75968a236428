import Glibc
import XCTest
@testable import Shadow

/// The inspector leads a process group of its own: the whole of a forking
/// inspector ends with it, whatever ends the run, and no fd or process of a
/// run is left behind.
final class InspectorHygieneTests: XCTestCase {
    /// A guest executor that answers its first `answered` calls on this host
    /// (a LocalExecutor) and then fails, as when the gdbstub dies mid-run.
    final class DyingExecutor: GuestSyscallExecutor {
        struct Gone: Error {}
        let inner = LocalExecutor(regionSize: 16384)
        var answered: Int
        init(answered: Int) { self.answered = answered }
        var regionAddress: UInt64 { inner.regionAddress }
        var regionSize: Int { inner.regionSize }
        func writeRegion(offset: Int, _ bytes: [UInt8]) throws { try inner.writeRegion(offset: offset, bytes) }
        func readRegion(offset: Int, count: Int) throws -> [UInt8] { try inner.readRegion(offset: offset, count: count) }
        func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 {
            guard answered > 0 else { throw Gone() }
            answered -= 1
            return try inner.syscall(number, arguments)
        }
    }

    /// A token no other process has, to find a run's processes: given to the
    /// inspector as an environment variable, which every descendant inherits.
    private func token() -> String { "SWVMM_HYGIENE_RUN=\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }

    /// Pids whose environment contains `token`.
    static func processes(containing token: String) -> [Int32] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        var found: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = Int32(name), pid != getpid() else { continue }
            let fd = open("/proc/\(pid)/environ", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            close(fd)
            if n > 0, String(decoding: buffer[0..<n].map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(token) { found.append(pid) }
        }
        return found
    }

    /// This process's open fds.
    static func openFds() -> Set<String> {
        guard let directory = opendir("/proc/self/fd") else { return [] }
        defer { closedir(directory) }
        var fds: Set<String> = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if Int(name) != nil { fds.insert(name) }
        }
        return fds
    }

    /// Nothing carrying `token` is left after a short grace period, no child
    /// of this process is unreaped, and this process holds the fds it held before.
    private func assertNothingLeft(_ token: String, fdsBefore: Set<String>, file: StaticString = #filePath, line: UInt = #line) {
        var left = Self.processes(containing: token)
        for _ in 0..<20 where !left.isEmpty { usleep(100_000); left = Self.processes(containing: token) }
        XCTAssertEqual(left, [], "processes left behind", file: file, line: line)
        for pid in left { kill(pid, SIGKILL) }
        var status: Int32 = 0
        XCTAssertEqual(waitpid(-1, &status, WNOHANG), -1, "a child left unreaped", file: file, line: line)
        // The directory stream of openFds() itself is closed again by then.
        XCTAssertEqual(Self.openFds(), fdsBefore, "fds leaked", file: file, line: line)
    }

    func testInspectorLeadsItsOwnProcessGroup() throws {
        let filter = try SeccompFilter.trapping(number: LinuxABI.Syscall.getppid)
        let process = try InspectorProcess.spawn(arguments: ["sleep", "30"], environment: SupervisorHarness.environment,
                                                 filter: filter, noRandomize: false, minimumOpenFiles: 0)
        XCTAssertEqual(getpgid(process.pid), process.pid)
        XCTAssertNotEqual(getpgid(process.pid), getpgrp())
        process.kill()
        XCTAssertEqual(try process.wait(), .signaled(SIGKILL))
    }

    /// A forking inspector whose orphans (reparented away from it) keep
    /// running, under a guest that dies mid-run: the run ends, and every
    /// process it started ends with it.
    func testForkingInspectorUnderDyingGuestLeavesNothing() throws {
        let tag = token()
        let fdsBefore = Self.openFds()
        let script = "while :; do (sleep 60 & :); cat /proc/loadavg >/dev/null; done"
        XCTAssertThrowsError(try SupervisorHarness.shadow(["sh", "-c", script], executor: DyingExecutor(answered: 200),
                                                          extraEnvironment: [tag])) { error in
            guard case SupervisorError.executor = error else { return XCTFail("\(error)") }
        }
        assertNothingLeft(tag, fdsBefore: fdsBefore)
    }

    /// Children the inspector leaves running when it exits end with it.
    func testBackgroundChildrenEndWithTheInspector() throws {
        let tag = token()
        let fdsBefore = Self.openFds()
        let (out, _) = try SupervisorHarness.shadow(["sh", "-c", "sleep 60 & (sleep 60 &); echo started"],
                                                   extraEnvironment: [tag])
        XCTAssertEqual(out.stdout, "started\n", out.stderr)
        assertNothingLeft(tag, fdsBefore: fdsBefore)
    }

    /// Repeated runs of a forking inspector leak neither fds nor processes.
    func testRepeatedForkingRunsLeakNothing() throws {
        let tag = token()
        let fdsBefore = Self.openFds()
        for _ in 0..<5 {
            let (out, _) = try SupervisorHarness.shadow(["sh", "-c", "for i in 1 2 3; do (cat /proc/version >/dev/null &); done"],
                                                       extraEnvironment: [tag])
            XCTAssertEqual(out.status, 0, out.stderr)
        }
        assertNothingLeft(tag, fdsBefore: fdsBefore)
    }
}
