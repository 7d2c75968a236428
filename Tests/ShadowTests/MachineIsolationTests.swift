import Glibc
import Guest
import XCTest
@testable import Shadow

/// Real host tools that act on the machine (`hostname NAME`, `kill -TERM
/// PID`) under the real supervisor must never change the machine that runs
/// them. Every check runs inside fresh UTS, PID, mount and IPC namespaces
/// (this test binary re-runs itself under `unshare`), so even a regression
/// renames or signals nothing of the machine running the tests.
final class MachineIsolationTests: XCTestCase {
    /// Set by the outer test for the run inside the namespaces: the outer UTS namespace.
    static let outerNamespaceVariable = "SWVMM_ISOLATION_OUTER_UTS"
    static let inspectorName = "swvmm-regression"

    func testMachineCallsInsideFreshNamespaces() throws {
        guard access("/usr/bin/unshare", X_OK) == 0 else { throw XCTSkip("no unshare(1)") }
        let hostName = Self.nodename()
        let inner = "ShadowTests.MachineIsolationTests/testInsideNamespaces"
        var arguments = ["/usr/bin/unshare", "--uts", "--pid", "--fork", "--mount-proc", "--ipc"]
        if getuid() != 0 { arguments.insert(contentsOf: ["--user", "--map-root-user"], at: 1) }
        arguments += [CommandLine.arguments[0], inner]
        let environment = SupervisorHarness.environment + ["\(Self.outerNamespaceVariable)=\(HostFile.link("/proc/self/ns/uts") ?? "")"]
        let out = try TemporaryFile()
        let status = try Self.spawnAndWait(arguments, environment: environment, output: out.fd)
        let log = out.contents()
        XCTAssertEqual(status, 0, log)
        XCTAssertTrue(log.contains("Executed 1 test, with 0 failures"), log)
        XCTAssertEqual(Self.nodename(), hostName, "the host's name is unchanged")
    }

    /// The checks; runs only inside the namespaces the outer test made.
    func testInsideNamespaces() throws {
        guard let outer = ProcessInfo.processInfo.environment[Self.outerNamespaceVariable] else {
            throw XCTSkip("runs only inside the namespaces of testMachineCallsInsideFreshNamespaces")
        }
        // Refuse to run anything that could act on the machine unless really isolated.
        XCTAssertNotEqual(HostFile.link("/proc/self/ns/uts"), outer)
        guard HostFile.link("/proc/self/ns/uts") != outer, getpid() == 1 else { return }
        let before = Self.nodename()

        // sethostname without --allow-writes: EPERM, the name unchanged.
        let (renamed, _) = try SupervisorHarness.shadow(["hostname", Self.inspectorName])
        XCTAssertNotEqual(renamed.status, 0)
        // hostname(1) words EPERM as "you must be root".
        XCTAssertTrue(renamed.stderr.contains("must be root") || renamed.stderr.contains("Operation not permitted"), renamed.stderr)
        XCTAssertEqual(Self.nodename(), before)

        // A process that is not the inspector's: kill -TERM is refused and it lives on.
        let victim = try Self.spawn(["sleep", "60"])
        defer { Glibc.kill(victim, SIGKILL); var s: Int32 = 0; waitpid(victim, &s, 0) }
        let (killed, _) = try SupervisorHarness.shadow(["kill", "-TERM", "\(victim)"])
        XCTAssertNotEqual(killed.status, 0)
        XCTAssertTrue(killed.stderr.contains("Operation not permitted"), killed.stderr)
        var status: Int32 = 0
        XCTAssertEqual(waitpid(victim, &status, WNOHANG), 0, "the process was signalled")

        // Signal 0 is a read: it goes to the guest (the stand-in answers 0).
        let guest = RecordingGuest()
        let (probed, _) = try SupervisorHarness.shadow(["kill", "-0", "\(victim)"], executor: guest)
        XCTAssertEqual(probed.status, 0, probed.stderr)
        XCTAssertEqual(guest.machineCalls.map(\.number), [LinuxABI.Syscall.kill])

        // With --allow-writes both go to the guest, and still nothing here changes.
        let writer = RecordingGuest()
        let allow = SupervisorConfiguration(policy: ShadowPolicy(allowWrites: true), diagnostic: { _ in })
        let (guestRename, _) = try SupervisorHarness.shadow(["hostname", Self.inspectorName], configuration: allow, executor: writer)
        XCTAssertEqual(guestRename.status, 0, guestRename.stderr)
        let (guestKill, _) = try SupervisorHarness.shadow(["kill", "-TERM", "\(victim)"], configuration: allow, executor: writer)
        XCTAssertEqual(guestKill.status, 0, guestKill.stderr)
        XCTAssertEqual(writer.machineCalls.map(\.number), [LinuxABI.Syscall.sethostname, LinuxABI.Syscall.kill])
        XCTAssertEqual(writer.machineCalls.last.map { Array($0.arguments.prefix(2)) }, [UInt64(victim), UInt64(SIGTERM)])
        XCTAssertEqual(Self.nodename(), before)
        XCTAssertEqual(waitpid(victim, &status, WNOHANG), 0, "the process was signalled")

        // The inspector's own child is its own business: killed locally.
        let (own, _) = try SupervisorHarness.shadow(["sh", "-c", "sleep 30 & kill -TERM $!; wait $!; echo $?"])
        XCTAssertEqual(own.stdout, "143\n", own.stderr)
    }

    static func nodename() -> String {
        var name = utsname()
        uname(&name)
        return withUnsafeBytes(of: name.nodename) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    static func spawn(_ arguments: [String], environment: [String] = SupervisorHarness.environment, output: Int32? = nil) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let output {
            posix_spawn_file_actions_adddup2(&actions, output, 1)
            posix_spawn_file_actions_adddup2(&actions, output, 2)
        }
        var pid: pid_t = 0
        var argv = arguments.map { strdup($0) } + [nil]
        var envp = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        let rc = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, &envp)
        guard rc == 0 else { throw SupervisorError.systemCall("posix_spawnp \(arguments[0])", errno: rc) }
        return pid
    }

    static func spawnAndWait(_ arguments: [String], environment: [String], output: Int32) throws -> Int32 {
        let pid = try spawn(arguments, environment: environment, output: output)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
