import CShadow
import Glibc
import Guest
import XCTest
@testable import Shadow

/// `swvmm shadow --vm` without a VM: a real control server in this process,
/// the real client starting real host tools, and a LocalExecutor in place of
/// the guest executor (this machine has no guest for these tests), so what
/// the tools print must equal running them directly.
final class ControlServerTests: XCTestCase {
    func testHostToolsThroughTheServerPrintWhatTheyPrintDirectly() throws {
        let directory = try TemporarySocketDirectory()
        let executor = LocalExecutor()
        let server = try ControlHarness.server(at: directory.socketPath, executor: executor)
        defer { server.stop() }
        for arguments in [["cat", "/etc/hostname"], ["uname", "-a"]] {
            let run = ControlHarness.client(at: directory.socketPath, arguments)
            XCTAssertNil(run.error, "\(arguments): \(String(describing: run.error))")
            let direct = try SupervisorHarness.direct(arguments)
            XCTAssertEqual(run.output.status, direct.status, "\(arguments)")
            XCTAssertEqual(run.output.stdout, direct.stdout, "\(arguments)")
            XCTAssertEqual(run.output.stderr, direct.stderr, "\(arguments)")
            XCTAssertFalse(run.output.stdout.isEmpty, "\(arguments)")
        }
        // The calls went through the server's executor, not around it.
        XCTAssertTrue(executor.calls.contains(LinuxABI.Syscall.openat), "\(executor.calls)")
        XCTAssertTrue(executor.calls.contains(LinuxABI.Syscall.uname), "\(executor.calls)")
    }

    func testTheCommandsExitStatusComesBack() throws {
        let directory = try TemporarySocketDirectory()
        let server = try ControlHarness.server(at: directory.socketPath)
        defer { server.stop() }
        XCTAssertEqual(ControlHarness.client(at: directory.socketPath, ["sh", "-c", "exit 7"]).exit, .exited(7))
        XCTAssertEqual(ControlHarness.client(at: directory.socketPath, ["sh", "-c", "kill -KILL $$"]).exit, .signaled(SIGKILL))
    }

    func testVerboseLinesComeBackToTheClient() throws {
        let directory = try TemporarySocketDirectory()
        let server = try ControlHarness.server(at: directory.socketPath)
        defer { server.stop() }
        // hostname(1) with an argument: sethostname, refused without --allow-writes.
        let run = ControlHarness.client(at: directory.socketPath, ["hostname", "swvmm-test-never-set"],
                                        request: InspectorRequest(command: "hostname", verbose: true))
        XCTAssertNil(run.error)
        XCTAssertNotEqual(run.exit, .exited(0))
        XCTAssertTrue(run.diagnostics.contains { $0.contains("sethostname") }, "\(run.diagnostics)")
    }

    func testTheGuestIsLetRunBetweenBurstsOfARemoteRun() throws {
        let directory = try TemporarySocketDirectory()
        let executor = QuietPeriodTests.TimedExecutor()
        // No release hook: every idle recorded comes from the serve loop's quiet period.
        let server = try ShadowControlServer(socketPath: directory.socketPath, provider: { executor }, release: { _ in },
                                             log: { _ in })
        try server.start()
        let run = ControlHarness.client(at: directory.socketPath,
                                        ["sh", "-c", "cat /proc/version >/dev/null; sleep 0.3; cat /proc/version >/dev/null"])
        server.stop()
        XCTAssertEqual(run.exit, .exited(0), "\(String(describing: run.error))")
        let events = executor.events
        let firstIdle = try XCTUnwrap(events.firstIndex(of: .idle), "\(events)")
        XCTAssertTrue(events[..<firstIdle].allSatisfy { $0 == .call })
        XCTAssertTrue(events[firstIdle...].contains(.call), "a second burst after the guest was let run: \(events)")
    }

    func testFdsThatAreNotAnInspectorsAreRefused() throws {
        let directory = try TemporarySocketDirectory()
        let log = LineLog()
        let server = try ControlHarness.server(at: directory.socketPath, log: log)
        defer { server.stop() }
        let path = directory.socketPath
        let connection = try ControlSocket.connect(path: path)
        defer { close(connection) }
        try ControlSocket.send(.request(InspectorRequest(command: "x")), on: connection, path: path)
        var refusal: String?
        var sent = false
        while refusal == nil {
            guard case let .message(message, _) = try ControlSocket.receive(on: connection, timeoutMilliseconds: 5000, path: path) else {
                return XCTFail("the server said nothing")
            }
            switch message {
            case .ready where !sent:
                // Two fds of this process's own, passed off as a listener and a pidfd.
                let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
                defer { close(null) }
                try ControlSocket.send(.inspector(pid: getpid()), on: connection, fds: [null, null], path: path)
                sent = true
            case let .refused(reason): refusal = reason
            default: break
            }
        }
        XCTAssertTrue(sent)
        XCTAssertTrue(refusal?.contains("seccomp listener") ?? false, refusal ?? "")
    }

    func testASecondClientWaitsForItsTurn() throws {
        let directory = try TemporarySocketDirectory()
        let server = try ControlHarness.server(at: directory.socketPath)
        defer { server.stop() }
        let firstEnd = LineLog()
        let first = try HostThread {
            _ = ControlHarness.client(at: directory.socketPath, ["sleep", "1.5"])
            firstEnd.append("\(monotonicNanoseconds())")
        }
        usleep(300_000)
        let second = ControlHarness.client(at: directory.socketPath, ["cat", "/etc/hostname"])
        let secondEnd = monotonicNanoseconds()
        first.join()
        XCTAssertNil(second.error)
        XCTAssertEqual(second.exit, .exited(0))
        XCTAssertEqual(second.diagnostics, [ShadowControlClient.waitingNotice])
        let firstEndNanoseconds = try XCTUnwrap(firstEnd.all.first.flatMap { UInt64($0) })
        XCTAssertGreaterThanOrEqual(secondEnd, firstEndNanoseconds, "the second ran before the first ended")
    }

    func testTheSocketIsThisUsersOnlyAndRemovedAtStop() throws {
        let directory = try TemporarySocketDirectory()
        let server = try ControlHarness.server(at: directory.socketPath)
        var info = stat()
        XCTAssertEqual(lstat(directory.socketPath, &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFSOCK)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        server.stop()
        XCTAssertEqual(lstat(directory.socketPath, &info), -1)
        XCTAssertEqual(errno, ENOENT)
    }

    func testTheDefaultDirectoryIsPrivate() throws {
        let directory = try TemporarySocketDirectory()
        let path = ControlSocket.defaultPath(runtimeDirectory: directory.path, pid: 4242)
        XCTAssertEqual(path, directory.path + "/swvmm/vm-4242.sock")
        try ControlSocket.prepareDirectory(ControlSocket.defaultDirectory(runtimeDirectory: directory.path))
        var info = stat()
        XCTAssertEqual(lstat(directory.path + "/swvmm", &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o700)
        XCTAssertTrue(ControlSocket.defaultPath(runtimeDirectory: nil, pid: 1).hasPrefix("/tmp/swvmm-\(getuid())/"))
    }

    func testAStaleSocketIsReportedThenReplaced() throws {
        let directory = try TemporarySocketDirectory()
        // A socket file nobody listens on: what a killed swvmm leaves.
        let (fd, _) = try ControlSocket.listen(path: directory.socketPath)
        close(fd)
        let refused = ControlHarness.client(at: directory.socketPath, ["true"])
        XCTAssertEqual(refused.error as? ControlError, .staleSocket(path: directory.socketPath))
        let server = try ControlHarness.server(at: directory.socketPath)
        defer { server.stop() }
        XCTAssertEqual(ControlHarness.client(at: directory.socketPath, ["true"]).exit, .exited(0))
    }

    func testALiveSocketIsNeverTaken() throws {
        let directory = try TemporarySocketDirectory()
        let server = try ControlHarness.server(at: directory.socketPath)
        defer { server.stop() }
        XCTAssertThrowsError(try ControlHarness.server(at: directory.socketPath)) { error in
            XCTAssertEqual(error as? ControlError, .socketInUse(path: directory.socketPath))
        }
        XCTAssertEqual(ControlHarness.client(at: directory.socketPath, ["true"]).exit, .exited(0))
    }

    func testAMissingSocketSaysSo() {
        let run = ControlHarness.client(at: "/nonexistent/swvmm/vm.sock", ["true"])
        XCTAssertEqual(run.error as? ControlError, .noSocket(path: "/nonexistent/swvmm/vm.sock"))
        XCTAssertTrue("\(run.error.map { "\($0)" } ?? "")".contains("is a swvmm VM running with --shadow?"))
    }

    func testAProviderErrorReachesTheClient() throws {
        let directory = try TemporarySocketDirectory()
        let log = LineLog()
        let server = try ControlHarness.server(at: directory.socketPath, log: log, provider: {
            throw ShadowError.badArgument("no shadow process can be built here")
        })
        defer { server.stop() }
        let run = ControlHarness.client(at: directory.socketPath, ["true"])
        guard case let .refused(path, reason)? = run.error as? ControlError else {
            return XCTFail("expected a refusal, got \(String(describing: run.error))")
        }
        XCTAssertEqual(path, directory.socketPath)
        XCTAssertTrue(reason.contains("no shadow process can be built here"), reason)
        XCTAssertTrue(log.all.contains { $0.contains("no shadow process can be built here") }, "\(log.all)")
    }

    func testAnExecutorFailureEndsTheRunAndTheCommand() throws {
        let directory = try TemporarySocketDirectory()
        let server = try ControlHarness.server(at: directory.socketPath, executor: FailingExecutor())
        defer { server.stop() }
        let run = ControlHarness.client(at: directory.socketPath, ["cat", "/etc/hostname"])
        guard case .serverFailed? = run.error as? ControlError else {
            return XCTFail("expected the server to end the run, got \(String(describing: run.error)), exit \(String(describing: run.exit))")
        }
        XCTAssertTrue("\(run.error!)".contains("went away during a test's redirected call"), "\(run.error!)")
    }

    func testTheServerStoppingMidRunEndsTheCommandAndAllItStarted() throws {
        let directory = try TemporarySocketDirectory()
        let server = try ControlHarness.server(at: directory.socketPath)
        let out = try TemporaryFile()
        let client = try ShadowControlClient(socketPath: directory.socketPath)
        let result = LineLog()
        let thread = try HostThread {
            do {
                let exit = try client.run(request: InspectorRequest(command: "sh"),
                                          arguments: ["sh", "-c", "echo $$; sleep 30 & wait"],
                                          environment: SupervisorHarness.environment, stdio: [-1, out.fd, -1],
                                          diagnostic: { _ in }).exit
                result.append("exit \(exit)")
            } catch {
                result.append("\(error)")
            }
        }
        var pid: Int32?
        for _ in 0..<100 where pid == nil {
            usleep(50_000)
            pid = out.contents().split(separator: "\n").first.flatMap { Int32($0) }
        }
        let inspector = try XCTUnwrap(pid, "the command never started")
        server.stop()
        thread.join()
        let message = try XCTUnwrap(result.all.first)
        XCTAssertTrue(message.contains("swvmm is stopping") || message.contains("went away"), message)
        XCTAssertFalse(ControlHarness.stillExists(inspector), "the command outlived the run")
        XCTAssertFalse(ControlHarness.stillExists(-inspector), "what the command started outlived the run")
    }

    func testAServerThatDiesMidRunLeavesNoStrays() throws {
        let directory = try TemporarySocketDirectory()
        let path = directory.socketPath
        // The server's half by hand, so that it can vanish mid-run (as a
        // killed swvmm does: its connection closes without a last word).
        let (listening, _) = try ControlSocket.listen(path: path)
        defer { close(listening); unlink(path) }
        let out = try TemporaryFile()
        let result = LineLog()
        let thread = try HostThread {
            do {
                let exit = try ShadowControlClient(socketPath: path).run(
                    request: InspectorRequest(command: "sh"), arguments: ["sh", "-c", "echo $$; sleep 30 & wait"],
                    environment: SupervisorHarness.environment, stdio: [-1, out.fd, -1], diagnostic: { _ in })
                result.append("exit \(exit)")
            } catch {
                result.append("\(error)")
            }
        }
        // CLOEXEC: the command the client forks in this same process must not hold the connection open.
        let connection = cshadow_accept_cloexec(listening)
        XCTAssertGreaterThanOrEqual(connection, 0)
        guard case .message(.request, _)? = try? ControlSocket.receive(on: connection, timeoutMilliseconds: 5000, path: path) else {
            close(connection)
            thread.join()
            return XCTFail("no request")
        }
        try ControlSocket.send(.accepted, on: connection, path: path)
        try ControlSocket.send(.ready(guestFdRange: .standard), on: connection, path: path)
        guard case let .message(.inspector(pid), fds)? = try? ControlSocket.receive(on: connection, timeoutMilliseconds: 5000, path: path) else {
            close(connection)
            thread.join()
            return XCTFail("no inspector")
        }
        // Nobody answers its notifications now: the command is stuck in its
        // first trapped call, as under a server that hangs and then dies.
        usleep(200_000)
        XCTAssertEqual(kill(pid, 0), 0, "the command is not running")
        fds.forEach { close($0) }
        close(connection)
        thread.join()
        let message = try XCTUnwrap(result.all.first)
        XCTAssertEqual(message, "\(ControlError.serverGone(path: path, during: "while sh ran; sh was killed"))")
        XCTAssertFalse(ControlHarness.stillExists(pid), "the command outlived the run")
        XCTAssertFalse(ControlHarness.stillExists(-pid), "what the command started outlived the run")
    }

    func testAClientThatGoesAwayTakesItsCommandWithIt() throws {
        let directory = try TemporarySocketDirectory()
        let server = try ControlHarness.server(at: directory.socketPath)
        defer { server.stop() }
        // The client's half by hand, so that it can vanish mid-run.
        let path = directory.socketPath
        let connection = try ControlSocket.connect(path: path)
        try ControlSocket.send(.request(InspectorRequest(command: "sleep")), on: connection, path: path)
        var range: GuestFdRange?
        while range == nil {
            guard case let .message(message, _) = try ControlSocket.receive(on: connection, timeoutMilliseconds: 5000, path: path) else {
                close(connection)
                return XCTFail("no go-ahead")
            }
            if case let .ready(r) = message { range = r }
        }
        let process = try InspectorProcess.spawn(arguments: ["sleep", "30"], environment: SupervisorHarness.environment,
                                                 filter: try SeccompFilter.build(range: range!), noRandomize: false,
                                                 minimumOpenFiles: Int(range!.upperBound))
        try ControlSocket.send(.inspector(pid: process.pid), on: connection, fds: [process.listener, process.pidfd], path: path)
        usleep(100_000)
        let start = monotonicNanoseconds()
        close(connection)
        XCTAssertEqual(try process.wait(), .signaled(SIGKILL))
        XCTAssertLessThan(monotonicNanoseconds() - start, 5_000_000_000, "the server did not end the command")
        // And the server is free for the next client.
        XCTAssertEqual(ControlHarness.client(at: path, ["true"]).exit, .exited(0))
    }

    func testAPeerOfAnotherUserIsRefused() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root: connecting as another uid (nobody) takes setresuid") }
        let directory = try TemporarySocketDirectory()
        let log = LineLog()
        let server = try ControlHarness.server(at: directory.socketPath, log: log)
        defer { server.stop() }
        let nobody: UInt64 = 65534
        var report: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&report), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(directory.socketPath.utf8)) }
        var buffer = [UInt8](repeating: 0, count: ControlWire.maximumMessageSize)
        let child = fork()
        if child == 0 {
            // Only system calls from here (a fork of a multithreaded process).
            // euid nobody, as SO_PEERCRED reports it; fsuid root, so the
            // 0600 socket file itself does not refuse the connection first.
            _ = cshadow_raw_syscall(LinuxABI.Syscall.setresuid, nobody, nobody, 0, 0, 0, 0)
            _ = cshadow_raw_syscall(LinuxABI.Syscall.setfsuid, 0, 0, 0, 0, 0, 0)
            let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard connected == 0 else { _exit(2) }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 { _ = write(report[1], &buffer, n) }
            _exit(0)
        }
        close(report[1])
        var received = [UInt8](repeating: 0, count: ControlWire.maximumMessageSize)
        let n = read(report[0], &received, received.count)
        close(report[0])
        var status: Int32 = 0
        waitpid(child, &status, 0)
        XCTAssertEqual(status, 0, "the child could not connect")
        XCTAssertGreaterThan(n, 0)
        let message = try ControlMessage.decode(Array(received.prefix(max(0, n))))
        guard case let .refused(reason) = message else { return XCTFail("expected a refusal, got \(message)") }
        XCTAssertTrue(reason.contains("uid 65534"), reason)
        XCTAssertTrue(log.all.contains { $0.contains("refused") && $0.contains("uid 65534") }, "\(log.all)")
        // The server goes on serving its own user.
        XCTAssertEqual(ControlHarness.client(at: directory.socketPath, ["true"]).exit, .exited(0))
    }
}
