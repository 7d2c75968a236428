import CShadow
import Glibc
import Synchronization

/// The `swvmm shadow --vm` side: asks the swvmm that owns a VM to serve a
/// command, starts the command here under the seccomp filter (so it keeps
/// this terminal, Ctrl-C and its exit status), hands its listener and pidfd
/// over, prints what the server says, and reaps it.
///
/// Usage: `let c = try ShadowControlClient(socketPath: p)`, then
/// `let exit = try c.run(request: r, arguments: ["ps", "aux"], environment: env).exit`.
/// `cancel()` (any thread, e.g. on SIGTERM) kills the command, or ends the
/// wait for its turn. Every failure is a `ControlError` (or the
/// `SupervisorError` of a command that cannot start); the command never
/// outlives `run`.
public final class ShadowControlClient: Sendable {
    /// How long the client waits for its turn before saying it is waiting.
    static let waitingNoticeMilliseconds: Int32 = 1000
    /// How long the client waits, after the command ended, for the server's
    /// last word (the lines it still had to send, a late failure).
    static let finishTimeoutMilliseconds: Int32 = 5000
    /// The line printed while another inspector has the VM.
    public static let waitingNotice = "swvmm: another inspector is running on this VM; waiting…"

    /// The server's socket.
    public let socketPath: String
    private let cancelPipe: (read: Int32, write: Int32)
    private let state = Mutex<(cancelled: Bool, inspector: InspectorProcess?)>((false, nil))

    public init(socketPath: String) throws {
        var ends: [Int32] = [-1, -1]
        let rc = cshadow_pipe_cloexec(&ends)
        guard rc == 0 else { throw ControlError.systemCall("pipe2 for", path: socketPath, errno: -rc) }
        self.socketPath = socketPath
        cancelPipe = (ends[0], ends[1])
    }

    deinit {
        close(cancelPipe.read)
        close(cancelPipe.write)
    }

    /// Kills the running command (its exit is then reported as usual), or
    /// ends the wait for a turn (`run` throws `ControlError.cancelled`).
    public func cancel() {
        state.withLock { state in
            state.cancelled = true
            state.inspector?.kill()
        }
        var byte: UInt8 = 1
        _ = write(cancelPipe.write, &byte, 1)
    }

    /// Runs `arguments` (arguments[0] searched in PATH) served by the VM at
    /// `socketPath`; returns how it ended and what the server reported of
    /// the run. `stdio` (benchmarks, tests) replaces its fds 0-2 where ≥ 0;
    /// `diagnostic` gets the server's lines and the waiting notice.
    public func run(request: InspectorRequest, arguments: [String], environment: [String],
                    stdio: [Int32] = [-1, -1, -1],
                    diagnostic: (String) -> Void = Supervisor.writeToStandardError) throws -> ShadowRunResult {
        let start = ContinuousClock().now
        let connection = try connect()
        defer { close(connection) }
        let server = try ControlSocket.peer(of: connection, path: socketPath)
        try ControlSocket.send(.request(request), on: connection, path: socketPath)
        let range = try awaitGoAhead(connection, diagnostic: diagnostic)
        let goAhead = ContinuousClock().now - start
        let filter = try SeccompFilter.build(range: range)
        let process = try InspectorProcess.spawn(arguments: arguments, environment: environment, filter: filter,
                                                 noRandomize: false, minimumOpenFiles: Int(range.upperBound),
                                                 stdio: stdio, ptracer: server.pid)
        let cancelledMeanwhile = state.withLock { state in
            state.inspector = process
            return state.cancelled
        }
        if cancelledMeanwhile { process.kill() }
        defer { state.withLock { $0.inspector = nil } }
        var reaped = false
        defer {
            if !reaped {
                process.kill()
                _ = try? process.wait()
            }
        }
        try ControlSocket.send(.inspector(pid: process.pid), on: connection, fds: [process.listener, process.pidfd], path: socketPath)
        var report = try awaitEnd(of: process, connection, command: arguments[0], diagnostic: diagnostic)
        let exit = try process.wait()
        reaped = true
        if report == nil { report = try awaitFinish(connection, command: arguments[0], diagnostic: diagnostic) }
        return ShadowRunResult(exit: exit, report: report, goAhead: goAhead)
    }

    /// Asks the VM's swvmm to end its shadow process (the next run makes a
    /// new one); returns the server's lines. Throws `ControlError.refused`
    /// when it cannot.
    public func stopShadow() throws -> [String] {
        let connection = try connect()
        defer { close(connection) }
        try ControlSocket.send(.stopShadow, on: connection, path: socketPath)
        var lines: [String] = []
        while true {
            switch try receive(connection, timeoutMilliseconds: -1) {
            case .timedOut, .woken: throw ControlError.cancelled
            case .closed: throw ControlError.serverGone(path: socketPath, during: "before ending the shadow process")
            case let .message(message, fds):
                fds.forEach { close($0) }
                switch message {
                case .accepted: continue
                case let .diagnostic(line): lines.append(line)
                case let .refused(reason): throw ControlError.refused(path: socketPath, reason: reason)
                case .finished(nil, _): return lines
                case let .finished(failure?, _): throw ControlError.serverFailed(path: socketPath, reason: failure)
                default: throw ControlError.protocolViolation("unexpected \(message.kind) after a request to end the shadow process")
                }
            }
        }
    }

    /// A connection to the server, whose uid is checked to be this user's.
    private func connect() throws -> Int32 {
        let connection = try ControlSocket.connect(path: socketPath)
        do {
            let server = try ControlSocket.peer(of: connection, path: socketPath)
            guard server.uid == getuid() else { throw ControlError.otherUser(path: socketPath, peerUID: server.uid) }
        } catch {
            close(connection)
            throw error
        }
        return connection
    }

    private func receive(_ connection: Int32, timeoutMilliseconds: Int32) throws -> ControlSocket.Received {
        try ControlSocket.receive(on: connection, timeoutMilliseconds: timeoutMilliseconds, wake: cancelPipe.read, path: socketPath)
    }

    /// Waits for this client's turn and the go-ahead; returns the guest fd range to filter.
    private func awaitGoAhead(_ connection: Int32, diagnostic: (String) -> Void) throws -> GuestFdRange {
        var accepted = false
        var noticed = false
        while true {
            let timeout = accepted || noticed ? -1 : Self.waitingNoticeMilliseconds
            switch try receive(connection, timeoutMilliseconds: timeout) {
            case .timedOut:
                diagnostic(Self.waitingNotice)
                noticed = true
            case .woken:
                throw ControlError.cancelled
            case .closed:
                throw ControlError.serverGone(path: socketPath, during: "before the command started")
            case let .message(message, fds):
                fds.forEach { close($0) }
                switch message {
                case .accepted: accepted = true
                case let .diagnostic(line): diagnostic(line)
                case let .refused(reason): throw ControlError.refused(path: socketPath, reason: reason)
                case let .ready(range) where fds.isEmpty:
                    try range.validate()
                    return range
                default: throw ControlError.protocolViolation("unexpected \(message.kind) before the go-ahead")
                }
            }
        }
    }

    /// Prints the server's lines until the command exits; throws (and the
    /// caller kills the command) when the server ends the run or goes away.
    /// Returns the server's report when its last word came already.
    private func awaitEnd(of process: InspectorProcess, _ connection: Int32, command: String,
                          diagnostic: (String) -> Void) throws -> RunReport? {
        var serverFinished: RunReport?
        var fds = [pollfd(fd: connection, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: process.pidfd, events: Int16(POLLIN), revents: 0)]
        while true {
            let n = poll(&fds, nfds_t(fds.count), -1)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw ControlError.systemCall("poll on", path: socketPath, errno: errno) }
            if fds[0].revents != 0 {
                // Not woken by cancel(): it kills the command, whose end comes through the pidfd.
                switch try ControlSocket.receive(on: connection, timeoutMilliseconds: 0, path: socketPath) {
                case .timedOut, .woken: break
                case .closed:
                    throw ControlError.serverGone(path: socketPath, during: "while \(command) ran; \(command) was killed")
                case let .message(message, attached):
                    attached.forEach { close($0) }
                    switch message {
                    case let .diagnostic(line): diagnostic(line)
                    case let .finished(failure?, _): throw ControlError.serverFailed(path: socketPath, reason: failure)
                    // The server saw the command exit first; its pidfd says so here at once.
                    case let .finished(nil, report):
                        serverFinished = report
                        fds[0].fd = -1
                    default: throw ControlError.protocolViolation("unexpected \(message.kind) while the command ran")
                    }
                }
            }
            if fds[1].revents != 0 { return serverFinished }
        }
    }

    /// After the command ended: the server's remaining lines and its last
    /// word (nil when it did not come in time).
    private func awaitFinish(_ connection: Int32, command: String, diagnostic: (String) -> Void) throws -> RunReport? {
        while true {
            switch try ControlSocket.receive(on: connection, timeoutMilliseconds: Self.finishTimeoutMilliseconds, path: socketPath) {
            case .timedOut, .woken:
                return nil
            case .closed:
                throw ControlError.serverGone(path: socketPath, during: "as \(command) ended")
            case let .message(message, attached):
                attached.forEach { close($0) }
                switch message {
                case let .diagnostic(line): diagnostic(line)
                case let .finished(nil, report): return report
                case let .finished(failure?, _): throw ControlError.serverFailed(path: socketPath, reason: failure)
                default: throw ControlError.protocolViolation("unexpected \(message.kind) after the command ended")
                }
            }
        }
    }
}

/// How a run through the VM's swvmm went.
public struct ShadowRunResult: Equatable, Sendable {
    /// How the command ended.
    public var exit: InspectorExit
    /// What the server reported of the run (nil: its last word did not come in time).
    public var report: RunReport?
    /// From connecting to the go-ahead: the wait for a turn, and for S (made or found).
    public var goAhead: Duration
}
