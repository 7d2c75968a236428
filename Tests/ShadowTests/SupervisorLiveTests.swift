import Glibc
import Guest
import XCTest
@testable import Shadow

/// Real host tools through the real supervisor (seccomp user notification,
/// ADDFD, process_vm_readv/writev). The guest executor is the one stand-in:
/// a LocalExecutor runs the redirected calls on this host, so each tool's
/// output must equal running it directly (up to fields that change between
/// runs: pids of the tool itself, free memory, times).
final class SupervisorLiveTests: XCTestCase {
    private func compare(_ arguments: [String], normalize: (String) -> String = { $0 },
                         expectRedirected: Bool = true, file: StaticString = #filePath, line: UInt = #line) throws {
        let (shadowed, supervisor) = try SupervisorHarness.shadow(arguments)
        let direct = try SupervisorHarness.direct(arguments)
        XCTAssertEqual(shadowed.status, direct.status, "status; stderr: \(shadowed.stderr)", file: file, line: line)
        XCTAssertEqual(normalize(shadowed.stdout), normalize(direct.stdout), file: file, line: line)
        XCTAssertEqual(shadowed.stderr, direct.stderr, file: file, line: line)
        if expectRedirected {
            XCTAssertGreaterThan(supervisor.counters.redirected, 0, file: file, line: line)
        }
        XCTAssertEqual(supervisor.openGuestFds, 0, "guest fds left open", file: file, line: line)
    }

    func testCatProcVersion() throws {
        let (shadowed, supervisor) = try SupervisorHarness.shadow(["cat", "/proc/version"])
        let direct = try SupervisorHarness.direct(["cat", "/proc/version"])
        XCTAssertEqual(shadowed.status, 0, shadowed.stderr)
        XCTAssertEqual(shadowed.stdout, direct.stdout)
        let c = supervisor.counters
        XCTAssertGreaterThan(c.redirected, 0)
        XCTAssertGreaterThan(c.local, 0)
        XCTAssertEqual(c.notifications, c.redirected + c.local + c.refused, "\(c)")
        XCTAssertGreaterThan(c.byName["openat"] ?? 0, 0, "\(c.byName)")
        XCTAssertGreaterThan(c.byName["read"] ?? 0, 0, "\(c.byName)")
        XCTAssertEqual(supervisor.openGuestFds, 0)
    }

    func testUname() throws {
        try compare(["uname", "-a"])
    }

    func testHostname() throws {
        try compare(["hostname"])
    }

    func testLsProc() throws {
        // The pid set changes with the processes this test and the tools start.
        try compare(["ls", "/proc"], normalize: { $0.split(separator: "\n").filter { Int($0) == nil }.joined(separator: "\n") })
    }

    func testLsLongProcSelfDirectory() throws {
        try compare(["ls", "-ld", "/proc/1", "/sys/kernel"])
    }

    func testPs() throws {
        try compare(["ps", "-e", "-o", "pid,comm"], normalize: SupervisorHarness.stableEarlyProcesses)
    }

    func testLsmod() throws {
        // /proc/modules may not exist on this host: the same error either way.
        try compare(["lsmod"], expectRedirected: false)
    }

    func testDf() throws {
        // Mount points and sizes; free blocks move between runs.
        let mounts: (String) -> String = { text in
            text.split(separator: "\n").map { $0.split(separator: " ").first.map(String.init) ?? "" }.joined(separator: "\n")
        }
        try compare(["df"], normalize: mounts)
    }

    func testFree() throws {
        // The total column is stable; used/free move.
        let totals: (String) -> String = { text in
            text.split(separator: "\n").map { line in line.split(separator: " ").prefix(2).joined(separator: " ") }.joined(separator: "\n")
        }
        try compare(["free"], normalize: totals)
    }

    func testHeadOfProcFile() throws {
        // head uses read; sort after it is local.
        // Not /proc/self: with the LocalExecutor "self" is this test process.
        try compare(["head", "-c", "100", "/proc/1/status"], normalize: { $0.split(separator: "\n").first.map(String.init) ?? "" })
    }

    /// A forked inspector holding a local fd inside the reserved range keeps
    /// it: the guest fd it opens next goes to the next free number of its
    /// own fd table (its parent does not hold that number).
    func testAForkedInspectorsOwnFdInTheReservedRangeSurvivesAGuestOpen() throws {
        var template = Array("/tmp/swvmm-fd-test-XXXXXX".utf8CString)
        let file = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard file >= 0 else { throw SupervisorError.systemCall("mkstemp", errno: errno) }
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path) }
        XCTAssertNil(writeAll(file, "local file behind fd 1000\n"))
        close(file)
        // bash: dash takes no fd above 9 in a redirection.
        let script = "(exec 1000<\(path); exec cat /proc/version /dev/fd/1000)"
        let (shadowed, supervisor) = try SupervisorHarness.shadow(["bash", "-c", script])
        let direct = try SupervisorHarness.direct(["cat", "/proc/version"])
        XCTAssertEqual(shadowed.status, 0, shadowed.stderr)
        XCTAssertEqual(shadowed.stdout, direct.stdout + "local file behind fd 1000\n", shadowed.stderr)
        XCTAssertGreaterThan(supervisor.counters.byName["openat"] ?? 0, 0, "\(supervisor.counters.byName)")
        XCTAssertEqual(supervisor.openGuestFds, 0)
    }

    func testWriteToGuestPathIsReadOnly() throws {
        let (out, supervisor) = try SupervisorHarness.shadow(["sh", "-c", "echo x > /proc/sys/kernel/hostname"])
        XCTAssertNotEqual(out.status, 0)
        XCTAssertTrue(out.stderr.contains("Read-only file system"), out.stderr)
        XCTAssertGreaterThan(supervisor.counters.refused, 0)
    }

    func testTouchGuestPathIsReadOnly() throws {
        let (out, _) = try SupervisorHarness.shadow(["touch", "/etc/hostname"])
        XCTAssertNotEqual(out.status, 0)
        XCTAssertTrue(out.stderr.contains("Read-only file system"), out.stderr)
    }

    func testNonexistentCommand() throws {
        XCTAssertThrowsError(try SupervisorHarness.shadow(["/nonexistent/swvmm-no-such-tool"])) { error in
            XCTAssertEqual("\(error)", "cannot run /nonexistent/swvmm-no-such-tool: No such file or directory (errno 2)")
        }
        XCTAssertThrowsError(try SupervisorHarness.shadow(["swvmm-no-such-tool-in-path"])) { error in
            XCTAssertEqual("\(error)", "cannot run swvmm-no-such-tool-in-path: No such file or directory (errno 2)")
        }
    }

    func testExitStatusIsTheInspectors() throws {
        let (out, _) = try SupervisorHarness.shadow(["sh", "-c", "exit 7"])
        XCTAssertEqual(out.status, 7)
    }

    func testInspectorKilledMidRun() throws {
        // The inspector kills itself while holding a guest fd.
        let (out, supervisor) = try SupervisorHarness.shadow(["sh", "-c", "exec 3</proc/version; kill -9 $$"])
        XCTAssertEqual(out.status, 128 + SIGKILL)
        XCTAssertEqual(supervisor.openGuestFds, 0)
        // No stray children: nothing of ours left unreaped.
        var status: Int32 = 0
        XCTAssertEqual(waitpid(-1, &status, WNOHANG), -1)
        XCTAssertEqual(errno, ECHILD)
    }

    func testChdirIntoGuestDirectory() throws {
        // cd into a guest directory, then relative paths and pwd are the guest's.
        let script = "cd /proc/self && cat ./stat >/dev/null && pwd && cd / && pwd"
        let (out, supervisor) = try SupervisorHarness.shadow(["bash", "-c", script])
        XCTAssertEqual(out.status, 0, out.stderr)
        XCTAssertEqual(out.stdout, "/proc/self\n/\n")
        XCTAssertGreaterThan(supervisor.counters.byName["chdir"] ?? 0, 0)
    }

    /// rtnetlink and sock_diag: `ip` and `ss` over a netlink socket of the
    /// "guest" (this host, through the LocalExecutor) print what they print directly.
    func testIpOverNetlink() throws {
        for arguments in [["ip", "addr"], ["ip", "link"], ["ip", "route"], ["ip", "-6", "route"], ["ip", "neigh"]] {
            // Interface statistics move while the two runs happen; addresses, names and routes do not.
            try compare(arguments, normalize: { $0.replacingOccurrences(of: #"lft \d+sec"#, with: "lft N", options: .regularExpression) })
        }
        let (_, supervisor) = try SupervisorHarness.shadow(["ip", "addr"])
        for name in ["socket", "bind", "getsockname", "setsockopt", "sendto", "recvmsg"] {
            XCTAssertGreaterThan(supervisor.counters.byName[name] ?? 0, 0, "\(name): \(supervisor.counters.byName)")
        }
    }

    func testSsOverSockDiag() throws {
        // Only listening sockets: they stay put while the two runs happen.
        try compare(["ss", "-tln"])
        let (_, supervisor) = try SupervisorHarness.shadow(["ss", "-tln"])
        XCTAssertGreaterThan(supervisor.counters.byName["sendmsg"] ?? 0, 0, "\(supervisor.counters.byName)")
        XCTAssertEqual(supervisor.counters.refused, 0, "\(supervisor.counters.byName)")
    }

    /// A change to the network configuration never reaches the "guest".
    func testIpAddressChangeIsRefused() throws {
        var lines: [String] = []
        let configuration = SupervisorConfiguration(verbose: true, diagnostic: { lines.append($0) })
        let (out, supervisor) = try SupervisorHarness.shadow(["ip", "link", "set", "lo", "mtu", "1280"], configuration: configuration)
        XCTAssertNotEqual(out.status, 0)
        XCTAssertTrue(out.stderr.contains("Operation not permitted"), out.stderr)
        XCTAssertTrue(lines.contains { $0.contains("would change the guest") }, "\(lines)")
        XCTAssertGreaterThan(supervisor.counters.refused, 0)
    }

    func testExecutorFailureEndsRunAndKillsInspector() throws {
        final class DeadExecutor: GuestSyscallExecutor {
            struct Gone: Error {}
            let regionAddress: UInt64 = 0x1000
            let regionSize = 4096
            func writeRegion(offset: Int, _ bytes: [UInt8]) throws {}
            func readRegion(offset: Int, count: Int) throws -> [UInt8] { [UInt8](repeating: 0, count: count) }
            func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 { throw Gone() }
        }
        XCTAssertThrowsError(try SupervisorHarness.shadow(["cat", "/proc/version"], executor: DeadExecutor())) { error in
            guard case SupervisorError.executor = error else { return XCTFail("\(error)") }
        }
        var status: Int32 = 0
        XCTAssertEqual(waitpid(-1, &status, WNOHANG), -1, "inspector reaped")
    }
}
