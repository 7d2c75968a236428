import Guest
import ArgumentParser
import CShadow
import GDBRemote
import Glibc
import Shadow
import VMM

/// `swvmm bench shadow`: what each inspection tool costs through shadow
/// context, against a QEMU gdbstub (`--gdb`) or a swvmm VM (`--vm`), or
/// with no target (`--local`: the supervisor alone): calls
/// redirected and local, notifications, target transitions per redirected
/// call, host-side time per redirected call beside the seccomp notification
/// round trip of the same run, and wall time beside the same binary run
/// natively (in the guest through its serial console with --guest-console,
/// else on this host); for a VM also how long making S and reaching an
/// existing S take. A Markdown table on stdout, progress on stderr, and
/// with --output results.csv, results.json and chart.svg.
struct ShadowBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shadow",
        abstract: "Per-tool cost of `swvmm shadow` against a guest's gdbstub or a swvmm VM (or the supervisor alone: --local)."
    )

    @Option(name: .customLong("gdb"), help: ArgumentHelp("The guest's gdbstub: unix:PATH or tcp:HOST:PORT.", valueName: "address"))
    var gdbAddress: String?
    @Option(name: .customLong("vm"), help: ArgumentHelp("The control socket of a swvmm VM run with --shadow.", valueName: "socket"))
    var vmSocket: String?
    @Flag(name: .customLong("local"), help: ArgumentHelp(
        "No target: the redirected calls run on this host (a stand-in executor), to measure the supervisor's own time per call."))
    var local = false
    @Option(help: "Runs of each tool (medians of the times are reported).")
    var runs = 1
    @Option(name: .customLong("setup-runs"), help: "With --vm: shadow-process bootstraps and reconnects timed (medians; default 10).")
    var setupRuns: Int?
    @Option(help: ArgumentHelp("Write results.csv, results.json and chart.svg into this directory (made if missing).", valueName: "dir"))
    var output: String?
    @Option(name: .customLong("guest-console"), help: ArgumentHelp(
        "The guest's serial console (a Unix socket: reference-guest.sh --bench makes WORKDIR/serial.sock): native_s is then "
            + "the same host binary timed inside the guest, from its /bench/bin (make images).", valueName: "socket"))
    var guestConsole: String?
    @Option(name: .customLong("only"), help: ArgumentHelp(
        "Bench only this tool of the list, as its command line is written there (\"ps -e\"; repeatable).", valueName: "tool"))
    var only: [String] = []
    @Option(help: "Notifications timed for the seccomp round trip.")
    var roundTrips = 20_000

    /// Bootstraps and reconnects timed without --setup-runs.
    static let defaultSetupRuns = 10

    static let tools: [[String]] = [
        ["ps", "-e"], ["ps", "aux"], ["pstree"], ["lsmod"], ["netstat", "-tln"], ["ss", "-tln"], ["uname", "-a"], ["free"],
        ["uptime"], ["df"], ["ls", "-R", "/proc/sys/kernel"], ["cat", "/proc/cpuinfo"],
    ]

    func validate() throws {
        guard [gdbAddress != nil, vmSocket != nil, local].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --gdb ADDRESS (a QEMU gdbstub), --vm SOCKET (a swvmm VM run with --shadow) "
                + "and --local (no target: the supervisor alone)")
        }
        if local && guestConsole != nil { throw ValidationError("--guest-console needs a guest: --gdb or --vm") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard roundTrips >= 1 else { throw ValidationError("--round-trips must be at least 1") }
        let names = Self.tools.map { $0.joined(separator: " ") }
        for tool in only where !names.contains(tool) {
            throw ValidationError("--only \"\(tool)\" is not one of the bench's tools: \(names.joined(separator: ", "))")
        }
        if let setupRuns {
            guard vmSocket != nil else { throw ValidationError("--setup-runs applies to --vm only") }
            guard setupRuns >= 1 else { throw ValidationError("--setup-runs must be at least 1") }
        }
    }

    func run() throws {
        // The bench's memos are its own (a fresh private directory), so each
        // tool's first fast run trains; a VM's swvmm keeps its own memos.
        let memoDirectory = try reportingErrors { try PrivateTemporaryDirectory(prefix: "swvmm-bench-memo") }
        defer { memoDirectory.remove() }
        let memoStore = MemoStore(directory: memoDirectory.path)
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard devNull >= 0 else { throw ExitCode(ExitStatus.failure) }
        defer { close(devNull) }
        let target: ShadowBenchTarget = try reportingErrors {
            if local { return LocalBenchTarget(devNull: devNull, memoStore: memoStore) }
            if let gdbAddress { return try GDBBenchTarget(address: gdbAddress, devNull: devNull, memoStore: memoStore) }
            return try VMBenchTarget(socketPath: vmSocket ?? "", devNull: devNull)
        }
        defer { target.close() }
        // Through the target first: a target that is not there fails before anything is timed.
        let kernel = try reportingErrors { try target.output(of: ["uname", "-r"]) }
        let guestCPUs = (try? target.output(of: ["cat", "/sys/devices/system/cpu/present"])).flatMap(Self.cpuCount)
        let roundTrip = try reportingErrors { try NotificationRoundTrip.measure(count: roundTrips) }
        let guestTimer = try reportingErrors { try guestConsole.map { try GuestNativeTimer(consolePath: $0) } }
        printError("swvmm: guest kernel \(kernel) (\(target.kind)); seccomp round trip \(formatted(roundTrip, digits: 2)) µs")

        var rows: [ShadowBenchRow] = []
        let tools = only.isEmpty ? Self.tools : Self.tools.filter { only.contains($0.joined(separator: " ")) }
        for (index, tool) in tools.enumerated() {
            let name = tool.joined(separator: " ")
            let row = try reportingErrors {
                try measure(tool, through: target, kernel: kernel, roundTrip: roundTrip, guestTimer: guestTimer, devNull: devNull)
            }
            printError("swvmm: [\(index + 1)/\(tools.count)] \(name): \(formatted(row.redirectedSeconds, digits: 3)) s, "
                + "memoized \(formatted(row.memoizedSeconds ?? 0, digits: 3)) s, \(row.redirectedCalls) redirected, "
                + (row.slowdown.map { "\(formatted($0, digits: 0))x native" } ?? "no native time: \(row.nativeNote ?? "")"))
            rows.append(row)
        }
        let setUp = try reportingErrors { try (target as? VMBenchTarget)?.setUpTimes(count: setupRuns ?? Self.defaultSetupRuns) }
        print(ShadowBenchTable.markdown(rows, setUp: setUp))
        if let output {
            let environment = ShadowBenchHost.environment(guestKernel: kernel, targetKind: target.kind,
                                                          targetAddress: gdbAddress ?? vmSocket ?? "this host", guestCPUs: guestCPUs,
                                                          nativeWhere: guestTimer == nil ? "host" : "guest", runs: runs)
            try reportingErrors { try ShadowBenchHost.write(rows: rows, environment: environment, setUp: setUp, into: output) }
            printError("swvmm: wrote \(output)/results.csv, results.json, chart.svg")
        }
    }

    /// `runs` runs of `tool` through the target on the one-call path
    /// (cold), one untimed fast-path run that trains its memo, `runs`
    /// memoized runs, and `runs` native runs (in the guest with
    /// `guestTimer`, else here); counts from the first run of each kind,
    /// times as medians.
    private func measure(_ tool: [String], through target: ShadowBenchTarget, kernel: String, roundTrip: Double,
                         guestTimer: GuestNativeTimer?, devNull: Int32) throws -> ShadowBenchRow {
        let name = tool.joined(separator: " ")
        // One native run untimed: the binary and its libraries in the page cache, as for the runs that follow.
        if guestTimer == nil { _ = try? Self.native(tool, environment: shadowBenchEnvironment, stdio: devNull) }
        let cold = try runs(of: tool, through: target, fastPath: false, devNull: devNull)
        _ = try runs(of: tool, through: target, fastPath: true, count: 1, devNull: devNull)
        let memoized = try runs(of: tool, through: target, fastPath: true, devNull: devNull)
        let native: Result<Double, NativeUnavailable>
        if let guestTimer {
            native = try guestTimer.time(tool, runs: runs)
        } else {
            var natives: [Double] = []
            for _ in 0 ..< runs {
                do {
                    natives.append(try Self.native(tool, environment: shadowBenchEnvironment, stdio: devNull))
                } catch {
                    throw ShadowBenchError.native(tool: name, reason: "\(error)")
                }
            }
            native = .success(median(natives))
        }
        let counters = cold.first.counters
        var nativeNote: String?
        if case .failure(let reason) = native { nativeNote = reason.description }
        return ShadowBenchRow(
            tool: name, kernel: kernel, target: target.kind, nativeSeconds: try? native.get(), nativeNote: nativeNote,
            redirectedSeconds: median(cold.walls),
            memoizedSeconds: median(memoized.walls), redirectedCalls: counters.redirected, localCalls: counters.local,
            notifications: counters.notifications,
            transitionsPerCallFirst: Self.transitionsPerCall(cold.first), transitionsPerCallMemoized: Self.transitionsPerCall(memoized.first),
            otherVCPUInterruptions: cold.first.measurementDeltas[ExecutorMeasurement.otherVCPUInterruptions],
            hostMicrosecondsPerCall: median(cold.hostMicros), seccompRoundTripMicroseconds: roundTrip)
    }

    /// `count` (default `runs`) runs of `tool`: the first run's report, the
    /// wall times and host µs per redirected call.
    private func runs(of tool: [String], through target: ShadowBenchTarget, fastPath: Bool, count: Int? = nil,
                      devNull: Int32) throws -> (first: RunReport, walls: [Double], hostMicros: [Double]) {
        let name = tool.joined(separator: " ")
        var first: RunReport?
        var walls: [Double] = [], hostMicros: [Double] = []
        for _ in 0 ..< (count ?? runs) {
            let run: ShadowToolRun
            do {
                run = try target.run(tool, stdout: devNull, fastPath: fastPath)
            } catch {
                throw ShadowBenchError.toolFailed(tool: name, reason: "\(error)")
            }
            if run.exit != .exited(0) { printError("swvmm: \(name) ended with \(run.exit) through the target") }
            first = first ?? run.report
            walls.append(run.wallSeconds)
            hostMicros.append(run.report.counters.hostMicrosecondsPerRedirectedCall)
        }
        return (first ?? RunReport(), walls, hostMicros)
    }

    /// Target transitions per redirected call in `report` (nil: not counted).
    static func transitionsPerCall(_ report: RunReport) -> Double? {
        let redirected = report.counters.redirected
        return report.measurementDeltas[ExecutorMeasurement.transitions].flatMap { redirected > 0 ? Double($0) / Double(redirected) : nil }
    }

    /// CPUs in a cpulist such as "0-2" or "0,2-3" (nil when it does not parse).
    static func cpuCount(_ list: String) -> Int? {
        var count = 0
        for part in list.split(separator: ",") {
            let bounds = part.split(separator: "-").map { Int($0) }
            switch bounds.count {
            case 1: guard bounds[0] != nil else { return nil }; count += 1
            case 2:
                guard let low = bounds[0], let high = bounds[1], high >= low else { return nil }
                count += high - low + 1
            default: return nil
            }
        }
        return count > 0 ? count : nil
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
