import Guest
import ArgumentParser
import CShadow
import GDBRemote
import Glibc
import Shadow
import VMM

/// `swvmm bench shadow`: what each inspection tool costs through shadow
/// context: calls redirected and local, notifications,
/// guest stops, host-side time per redirected call against the seccomp
/// notification round trip of the same run, and wall time beside the same
/// tool run natively on the host.
struct ShadowBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shadow",
        abstract: "Per-tool cost of `swvmm shadow` against a guest's gdbstub."
    )

    @Option(name: .customLong("gdb"), help: ArgumentHelp("The guest's gdbstub: unix:PATH or tcp:HOST:PORT.", valueName: "address"))
    var gdbAddress: String
    @Option(help: "Runs of each tool (medians of the times are reported).")
    var runs = 1
    @Option(help: "Notifications timed for the seccomp round trip.")
    var roundTrips = 20_000

    static let tools: [[String]] = [
        ["ps", "-e", "-o", "pid,comm"], ["ps", "aux"], ["pstree", "-p"], ["lsmod"], ["netstat", "-tln"],
        ["uname", "-a"], ["hostname"], ["uptime"], ["free"], ["cat", "/proc/cpuinfo"], ["ls", "/proc"], ["df"],
    ]

    func run() throws {
        let environment = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "LC_ALL=C", "COLUMNS=200", "TERM=dumb"]
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard devNull >= 0 else { throw ExitCode(ExitStatus.failure) }
        defer { close(devNull) }
        let roundTrip = try reportingErrors { try NotificationRoundTrip.measure(count: roundTrips) }

        let target = try reportingErrors { try GDBRemoteTarget(address: gdbAddress, timeout: 10) }
        let session = try reportingErrors { try ShadowSession(target: target, key: gdbAddress) }
        defer { ShadowCommand.leave(session, target) }
        let executor = session.executor
        print("guest at \(gdbAddress): \(ShadowCommand.describe(session))")
        print("seccomp notification round trip: \(formatted(roundTrip, digits: 2)) µs (median of 5 x \(roundTrips))")
        print("")

        var rows: [[String]] = [["tool", "redirected", "local", "notifications", "guest stops",
                                 "host µs/redirected", "x round trip", "host+executor µs", "wall s", "native ms", "slowdown"]]
        for tool in Self.tools {
            var walls: [Double] = [], natives: [Double] = []
            var counters = SupervisorCounters(), stops = 0, waiting: Duration = .zero
            for _ in 0 ..< max(1, runs) {
                let supervisor = Supervisor(executor: executor, configuration: SupervisorConfiguration(diagnostic: { _ in }))
                let before = executor.statistics
                let start = monotonicSeconds()
                let exit = try reportingErrors { try supervisor.run(arguments: tool, environment: environment, stdio: [devNull, devNull, devNull]) }
                walls.append(monotonicSeconds() - start)
                let after = executor.statistics
                try? executor.release()
                if exit != .exited(0) { printError("swvmm: \(tool.joined(separator: " ")) ended with \(exit) under shadow") }
                counters = supervisor.counters
                stops = after.stops - before.stops
                waiting = after.waiting - before.waiting
                natives.append(try reportingErrors { try Self.native(tool, environment: environment, stdio: devNull) })
            }
            // Host-side: the supervisor's handling with the executor left out,
            // and the same with only the wait for the guest left out.
            let supervisorMicros = counters.hostMicrosecondsPerRedirectedCall
            let waitingNanos = Double(waiting.components.seconds) * 1e9 + Double(waiting.components.attoseconds) / 1e9
            let hostMicros = counters.redirected > 0
                ? max(0, Double(counters.redirectedNanoseconds) - waitingNanos) / Double(counters.redirected) / 1000 : 0
            let wall = median(walls), native = median(natives)
            rows.append([tool.joined(separator: " "), "\(counters.redirected)", "\(counters.local)", "\(counters.notifications)", "\(stops)",
                         formatted(supervisorMicros, digits: 1), formatted(supervisorMicros / roundTrip, digits: 1),
                         formatted(hostMicros, digits: 1), formatted(wall, digits: 2), formatted(native * 1000, digits: 1),
                         formatted(wall / native, digits: 0) + "x"])
        }
        printTable(rows)
        print("""

        host µs/redirected: Supervisor time per redirected call minus the executor's (SupervisorCounters);
        host+executor µs: the same with only the executor's wait for the guest to stop taken out (ExecutorStatistics.waiting);
        guest stops: breakpoint hits and steps (ExecutorStatistics.stops); native: the same binary run directly on the host.
        """)
    }

    /// Wall time of `tool` run directly, in seconds.
    static func native(_ tool: [String], environment: [String], stdio: Int32) throws -> Double {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd in Int32(0) ... 2 { posix_spawn_file_actions_adddup2(&actions, stdio, fd) }
        let start = monotonicSeconds()
        var pid: pid_t = 0
        let argv = tool.map { strdup($0) } + [nil], envp = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        let rc = posix_spawnp(&pid, tool[0], &actions, nil, argv, envp)
        guard rc == 0 else { throw ValidationError("cannot run \(tool[0]): \(errnoText(rc))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return monotonicSeconds() - start
    }

    func printTable(_ rows: [[String]]) {
        let widths = (0 ..< rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let cells = row.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: widths[index] - cell.count)
                return index == 0 ? cell + pad : pad + cell
            }
            print(cells.joined(separator: "  "))
        }
    }
}

/// The seccomp user-notification round trip: a child calls getppid in a loop
/// under a filter that traps only getppid, this process answers each
/// notification with a value, as the supervisor answers a redirected call.
enum NotificationRoundTrip {
    /// Median over 5 batches of microseconds per notification.
    /// getppid(2) on x86-64.
    static let getppidNumber = 110

    static func measure(count: Int) throws -> Double {
        var samples: [Double] = []
        for _ in 0 ..< 5 {
            let filter = try SeccompFilter.trapping(number: getppidNumber)
            let process = try InspectorProcess.spawnSyscallLoop(filter: filter, number: getppidNumber, count: count)
            // The same wake-up mode the supervisor asks for.
            _ = cshadow_notif_set_flags(process.listener, CSHADOW_USER_NOTIF_FD_SYNC_WAKE_UP)
            let start = monotonicSeconds()
            var answered = 0
            while answered < count {
                var notification = seccomp_notif()
                guard cshadow_notif_recv(process.listener, &notification) == 0 else { break }
                var response = seccomp_notif_resp()
                response.id = notification.id
                response.val = 1
                _ = cshadow_notif_send(process.listener, &response)
                answered += 1
            }
            let elapsed = monotonicSeconds() - start
            _ = try process.wait()
            guard answered == count else {
                throw ValidationError("the round-trip probe stopped after \(answered) of \(count) notifications")
            }
            samples.append(elapsed / Double(count) * 1e6)
        }
        return median(samples)
    }
}

/// The monotonic clock in seconds, for wall times of whole runs.
private func monotonicSeconds() -> Double { Double(monotonicNanoseconds()) / 1e9 }
