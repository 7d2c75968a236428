import Glibc
import XCTest
@testable import Shadow

/// On a terminal, the inspector's group holds the foreground while it runs:
/// Ctrl-C reaches the command (and only the command), and swvmm gets the
/// terminal back afterwards. The terminal is a pseudo-terminal from
/// script(1), in which this test binary re-runs itself.
final class InspectorTerminalTests: XCTestCase {
    static let innerVariable = "SWVMM_TERMINAL_TEST_INNER"

    func testCtrlCReachesTheCommandOnATerminal() throws {
        guard access("/usr/bin/script", X_OK) == 0 else { throw XCTSkip("no script(1)") }
        let inner = "'\(CommandLine.arguments[0])' ShadowTests.InspectorTerminalTests/testInsideTerminal"
        var input: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&input), 0)
        let out = try TemporaryFile()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, out.fd, 1)
        posix_spawn_file_actions_adddup2(&actions, out.fd, 2)
        posix_spawn_file_actions_addclose(&actions, input[1])
        let arguments: [String] = ["/usr/bin/script", "-qec", inner, "/dev/null"]
        var argv = arguments.map { strdup($0) } + [nil]
        var envp = (SupervisorHarness.environment + ["\(Self.innerVariable)=1"]).map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        XCTAssertEqual(posix_spawn(&pid, "/usr/bin/script", &actions, nil, &argv, &envp), 0)
        close(input[0])
        defer { close(input[1]) }
        // Once the command says it runs, type Ctrl-C (ETX) on the terminal.
        var typed = false
        for _ in 0..<300 where !typed {
            usleep(100_000)
            if out.contents().contains("inspector-running") {
                usleep(300_000)
                var etx: UInt8 = 3
                XCTAssertEqual(write(input[1], &etx, 1), 1)
                typed = true
            }
        }
        XCTAssertTrue(typed, out.contents())
        var status: Int32 = 0
        for _ in 0..<300 where waitpid(pid, &status, WNOHANG) == 0 { usleep(100_000) }
        if kill(pid, 0) == 0 { kill(pid, SIGKILL); waitpid(pid, &status, 0) }
        let log = out.contents()
        XCTAssertTrue(log.contains("Executed 1 test, with 0 failures"), log)
    }

    /// Runs only on the pseudo-terminal of the test above.
    func testInsideTerminal() throws {
        guard ProcessInfo.processInfo.environment[Self.innerVariable] != nil else {
            throw XCTSkip("runs only inside testCtrlCReachesTheCommandOnATerminal")
        }
        XCTAssertEqual(isatty(STDIN_FILENO), 1)
        XCTAssertEqual(tcgetpgrp(STDIN_FILENO), getpgrp(), "the test holds the terminal's foreground")
        let supervisor = Supervisor(executor: LocalExecutor(), configuration: SupervisorConfiguration(diagnostic: { _ in }))
        let exit = try supervisor.run(arguments: ["sh", "-c", "echo inspector-running; sleep 20"],
                                      environment: SupervisorHarness.environment)
        XCTAssertEqual(exit, .signaled(SIGINT), "Ctrl-C reached the command")
        XCTAssertEqual(tcgetpgrp(STDIN_FILENO), getpgrp(), "the terminal came back")
    }
}
