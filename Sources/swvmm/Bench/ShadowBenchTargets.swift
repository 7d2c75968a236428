import ArgumentParser
import CShadow
import GDBRemote
import Glibc
import Guest
import Shadow

/// One tool run through a target, as `swvmm bench shadow` counts it.
struct ShadowToolRun {
    var exit: InspectorExit
    var wallSeconds: Double
    /// The supervisor's counters and the executor's measurement deltas.
    var report: RunReport
    /// From connecting to the go-ahead (vm only).
    var goAhead: Duration?
}

/// What the benchmark runs tools through: a QEMU gdbstub or a swvmm VM.
protocol ShadowBenchTarget: AnyObject {
    /// "gdb", "vm" or "local".
    var kind: String { get }
    /// Runs `tool` (arguments[0] in PATH) with stdin and stderr on /dev/null
    /// and stdout on `stdout`; `fastPath`: with read-ahead and the memo
    /// (false: the one-call path, `--one-call`).
    func run(_ tool: [String], stdout: Int32, fastPath: Bool) throws -> ShadowToolRun
    /// Lets the target go (detaches from the gdbstub; nothing for a VM).
    func close()
}

/// Why the benchmark stopped.
enum ShadowBenchError: Error, CustomStringConvertible {
    /// The target failed while running a tool (the guest or VM died, a stub stopped answering).
    case toolFailed(tool: String, reason: String)
    /// A tool could not be run natively on this host.
    case native(tool: String, reason: String)
    /// The VM's swvmm gave no report for a run (it speaks an older protocol, or its last word was late).
    case noReport(tool: String)
    /// A run after --stop-shadow reused S instead of making a new one.
    case shadowNotRemade

    var description: String {
        switch self {
        case let .toolFailed(tool, reason): return "the bench stopped at \(tool): \(reason)"
        case let .native(tool, reason): return "cannot run \(tool) on this host: \(reason)"
        case let .noReport(tool): return "the VM's swvmm sent no report for \(tool)"
        case .shadowNotRemade: return "the run after --stop-shadow did not make a new shadow process (no set-up time)"
        }
    }
}

/// The environment every tool gets, here and in the target: C locale, a
/// wide terminal, so outputs do not depend on the caller's settings.
let shadowBenchEnvironment = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "LC_ALL=C",
                              "COLUMNS=200", "TERM=dumb"]

/// Tools through a QEMU gdbstub: the shadow session (S found again or made) and its executor.
final class GDBBenchTarget: ShadowBenchTarget {
    let kind = "gdb"
    private let target: GDBRemoteTarget
    private let session: ShadowSession
    private let devNull: Int32
    /// The bench's own memos, so the first fast run of each tool trains.
    private let memoStore: MemoStore?

    init(address: String, devNull: Int32, memoStore: MemoStore?) throws {
        self.memoStore = memoStore
        target = try GDBRemoteTarget(address: address, timeout: 10)
        do {
            session = try ShadowSession(target: target, key: ShadowCommand.stateKey(address))
        } catch {
            try? target.detach()
            throw error
        }
        self.devNull = devNull
        printError("swvmm: guest at \(address): \(ShadowCommand.describe(session))")
    }

    func run(_ tool: [String], stdout: Int32, fastPath: Bool) throws -> ShadowToolRun {
        let executor = session.executor
        let supervisor = Supervisor(executor: executor, configuration: SupervisorConfiguration(
            fastPath: fastPath, memoStore: fastPath ? memoStore : nil, diagnostic: { _ in }))
        let before = executor.measurements
        let start = monotonicNanoseconds()
        let exit = try supervisor.run(arguments: tool, environment: shadowBenchEnvironment, stdio: [devNull, stdout, devNull])
        let wall = Double(monotonicNanoseconds() - start) / 1e9
        let report = RunReport(counters: supervisor.counters, measuredBefore: before, measuredAfter: executor.measurements,
                               origin: nil, setUp: nil)
        try? executor.release()
        return ShadowToolRun(exit: exit, wallSeconds: wall, report: report, goAhead: nil)
    }

    func close() { ShadowCommand.leave(session, target) }
}

/// Tools through the supervisor with this host as the "guest": a
/// LocalExecutor runs each redirected call here. No target is reached, so
/// the run measures the supervisor alone (its time per call beside the
/// seccomp round trip) on any machine; its outputs describe this host.
final class LocalBenchTarget: ShadowBenchTarget {
    let kind = "local"
    private let devNull: Int32
    private let memoStore: MemoStore?

    init(devNull: Int32, memoStore: MemoStore?) {
        self.devNull = devNull
        self.memoStore = memoStore
    }

    func run(_ tool: [String], stdout: Int32, fastPath: Bool) throws -> ShadowToolRun {
        let supervisor = Supervisor(executor: LocalExecutor(), configuration: SupervisorConfiguration(
            fastPath: fastPath, memoStore: fastPath ? memoStore : nil, diagnostic: { _ in }))
        let start = monotonicNanoseconds()
        let exit = try supervisor.run(arguments: tool, environment: shadowBenchEnvironment, stdio: [devNull, stdout, devNull])
        let wall = Double(monotonicNanoseconds() - start) / 1e9
        return ShadowToolRun(exit: exit, wallSeconds: wall, report: RunReport(counters: supervisor.counters), goAhead: nil)
    }

    func close() {}
}

/// Tools through a swvmm VM's control socket, each a client run as
/// `swvmm shadow --vm` makes it.
final class VMBenchTarget: ShadowBenchTarget {
    let kind = "vm"
    private let client: ShadowControlClient
    private let devNull: Int32

    init(socketPath: String, devNull: Int32) throws {
        client = try ShadowControlClient(socketPath: socketPath)
        self.devNull = devNull
    }

    func run(_ tool: [String], stdout: Int32, fastPath: Bool) throws -> ShadowToolRun {
        let start = monotonicNanoseconds()
        let result = try client.run(request: InspectorRequest(command: tool[0], fastPath: fastPath), arguments: tool,
                                    environment: shadowBenchEnvironment, stdio: [devNull, stdout, devNull],
                                    diagnostic: { _ in })
        let wall = Double(monotonicNanoseconds() - start) / 1e9
        guard let report = result.report else { throw ShadowBenchError.noReport(tool: tool.joined(separator: " ")) }
        return ShadowToolRun(exit: result.exit, wallSeconds: wall, report: report, goAhead: result.goAhead)
    }

    /// Medians of `count` bootstraps of S (--stop-shadow, then a run of
    /// hostname: the set-up time its report gives) and of `count` runs that
    /// find S there (the time to their go-ahead).
    func setUpTimes(count: Int) throws -> ShadowSetUpTimes {
        var bootstraps: [Double] = [], reconnects: [Double] = []
        for index in 0 ..< count {
            printError("swvmm: S set-up \(index + 1)/\(count)")
            _ = try client.stopShadow()
            let run = try self.run(["hostname"], stdout: devNull, fastPath: false)
            guard let nanoseconds = run.report.setUpNanoseconds else { throw ShadowBenchError.shadowNotRemade }
            bootstraps.append(Double(nanoseconds) / 1e9)
        }
        for _ in 0 ..< count {
            if let goAhead = try run(["hostname"], stdout: devNull, fastPath: false).goAhead { reconnects.append(goAhead.seconds) }
        }
        return ShadowSetUpTimes(bootstrapSeconds: median(bootstraps), reconnectSeconds: median(reconnects), samples: count)
    }

    func close() {}
}

extension ShadowBenchTarget {
    /// What `tool` prints through the target, trimmed (the guest's uname -r...).
    func output(of tool: [String]) throws -> String {
        var ends: [Int32] = [-1, -1]
        let piped = cshadow_pipe_cloexec(&ends)
        guard piped == 0 else { throw ShadowBenchError.toolFailed(tool: tool[0], reason: "pipe2: \(errnoText(-piped))") }
        defer { Glibc.close(ends[0]) }
        // Small outputs only: the pipe holds them until the tool has ended.
        let run = try { defer { Glibc.close(ends[1]) }; return try self.run(tool, stdout: ends[1], fastPath: false) }()
        guard run.exit == .exited(0) else {
            throw ShadowBenchError.toolFailed(tool: tool.joined(separator: " "), reason: "it ended with \(run.exit)")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(ends[0], $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes += chunk[0 ..< count]
        }
        return String(decoding: bytes, as: UTF8.self).trimmed(of: " \n\t")
    }
}

extension String {
    /// The text without leading and trailing characters of `set`.
    func trimmed(of set: String) -> String {
        let kept = drop { set.contains($0) }
        return String(kept.reversed().drop { set.contains($0) }.reversed())
    }
}
