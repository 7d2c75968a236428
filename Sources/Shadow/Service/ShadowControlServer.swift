import CShadow
import Glibc
import Guest
import Synchronization

/// The VM side of `swvmm shadow --vm`: a control socket on which clients of
/// this user hand over an inspector they started under the seccomp filter;
/// this process (which owns the VM and its guest executor) answers the
/// inspector's notifications, so no redirected call crosses the socket.
///
/// One client at a time, on the server's own thread; others wait in the
/// listen backlog for their turn. Per client: check its uid (SO_PEERCRED),
/// read its request, get an executor from `provider` (a failure is sent to
/// the client as text), send the go-ahead, receive the listener and pidfd,
/// serve until the inspector exits, the client leaves or the server stops,
/// then `release` the executor. Usage: `let s = try ShadowControlServer(...)`,
/// `try s.start()`, and `s.stop()` before exiting (it removes the socket).
public final class ShadowControlServer: @unchecked Sendable {
    /// Gives the executor for one run (it may build S the first time); runs on the server's thread.
    public typealias ExecutorProvider = () throws -> GuestSyscallExecutor
    /// Ends the VM's shadow process (`swvmm shadow --vm --stop-shadow`); returns a
    /// line for the client; runs on the server's thread, between runs.
    public typealias ShadowStopper = () throws -> String

    /// How long a connected client may take to send its request.
    static let requestTimeoutMilliseconds: Int32 = 10_000
    /// How long a client may take to start its inspector after the go-ahead
    /// (the exec itself, or a slow file system).
    static let inspectorTimeoutMilliseconds: Int32 = 30_000

    /// Where the socket is.
    public let socketPath: String
    private let listening: Int32
    private let identity: FileIdentity
    /// Written once by `stop()`, never drained: every wait of the server's thread watches it.
    private let wake: (read: Int32, write: Int32)
    private let provider: ExecutorProvider
    private let release: (GuestSyscallExecutor) -> Void
    private let stopShadow: ShadowStopper?
    private let log: (String) -> Void
    private let configuration: SupervisorConfiguration
    private let stopped = Mutex(false)
    private var thread: HostThread?

    /// Binds the socket at `socketPath` (mode 0600; a stale socket there is
    /// replaced, a live one is `ControlError.socketInUse`). Nothing is served
    /// before `start()`. `configuration` gives the supervisor's settings other
    /// than the client's policy options (its `memoStore` is where a client's
    /// fast path keeps memos; nil: none is read or written); `log` receives the server's own
    /// lines (refused clients, failed runs). Without `stopShadow`, a client's
    /// request to end S is refused as not supported.
    public init(socketPath: String, configuration: SupervisorConfiguration = SupervisorConfiguration(),
                provider: @escaping ExecutorProvider,
                release: @escaping (GuestSyscallExecutor) -> Void = { try? $0.idle() },
                stopShadow: ShadowStopper? = nil,
                log: @escaping (String) -> Void = Supervisor.writeToStandardError) throws {
        var pipeEnds: [Int32] = [-1, -1]
        let piped = cshadow_pipe_cloexec(&pipeEnds)
        guard piped == 0 else { throw ControlError.systemCall("pipe2 for", path: socketPath, errno: -piped) }
        do {
            (listening, identity) = try ControlSocket.listen(path: socketPath)
        } catch {
            close(pipeEnds[0])
            close(pipeEnds[1])
            throw error
        }
        self.socketPath = socketPath
        wake = (pipeEnds[0], pipeEnds[1])
        self.provider = provider
        self.release = release
        self.stopShadow = stopShadow
        self.log = log
        self.configuration = configuration
    }

    deinit { stop() }

    /// Starts serving on a thread of its own.
    public func start() throws {
        guard thread == nil else { return }
        thread = try HostThread(name: "shadow-control") { [self] in acceptLoop() }
    }

    /// Stops serving: an inspector being served is killed (its client then
    /// reports that swvmm is stopping), the socket file is removed (when it
    /// is still ours) and the thread joined; a provider call in progress is
    /// waited for (the provider should fail fast once the VM stops). Safe to
    /// call more than once.
    public func stop() {
        let first = stopped.withLock { wasStopped in
            defer { wasStopped = true }
            return !wasStopped
        }
        guard first else { return }
        if FileIdentity(path: socketPath) == identity { unlink(socketPath) }
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
        thread?.join()
        close(listening)
        close(wake.read)
        close(wake.write)
    }

    private var isStopped: Bool { stopped.withLock { $0 } }

    private func acceptLoop() {
        var fds = [pollfd(fd: listening, events: Int16(POLLIN), revents: 0), pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
        while !isStopped {
            let n = poll(&fds, nfds_t(fds.count), -1)
            if n < 0 && errno == EINTR { continue }
            if fds[1].revents != 0 { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let connection = cshadow_accept_cloexec(listening)
            guard connection >= 0 else {
                // Out of fds or memory: let the condition pass rather than spin.
                if connection != -EINTR && connection != -ECONNABORTED { usleep(100_000) }
                continue
            }
            serveClient(connection)
            close(connection)
        }
    }

    /// Sends `message`, ignoring a client that is gone (its own side reports that).
    private func tell(_ connection: Int32, _ message: ControlMessage) {
        try? ControlSocket.send(message, on: connection, path: socketPath)
    }

    private func refuse(_ connection: Int32, _ reason: String, logging: Bool = true) {
        if logging { log("swvmm: refused a shadow client on \(socketPath): \(reason)") }
        tell(connection, .refused(reason))
    }

    /// Waits for one message from the client; nil (after telling it why,
    /// where there is something to say) when none usable came.
    private func nextMessage(_ connection: Int32, timeoutMilliseconds: Int32) -> (ControlMessage, [Int32])? {
        do {
            switch try ControlSocket.receive(on: connection, timeoutMilliseconds: timeoutMilliseconds, wake: wake.read, path: socketPath) {
            case let .message(message, fds): return (message, fds)
            case .closed, .woken: return nil
            case .timedOut:
                refuse(connection, "no message within \(timeoutMilliseconds / 1000) s")
                return nil
            }
        } catch {
            refuse(connection, "\(error)")
            return nil
        }
    }

    private func serveClient(_ connection: Int32) {
        let peer: (pid: Int32, uid: UInt32)
        do {
            peer = try ControlSocket.peer(of: connection, path: socketPath)
        } catch {
            log("swvmm: \(error)")
            return
        }
        guard peer.uid == getuid() else {
            refuse(connection, "this VM's swvmm runs as uid \(getuid()); uid \(peer.uid) (pid \(peer.pid)) may not use it")
            return
        }
        // A probe (a second swvmm checking the socket is live) just closes.
        guard let (first, strayFds) = nextMessage(connection, timeoutMilliseconds: Self.requestTimeoutMilliseconds) else { return }
        strayFds.forEach { close($0) }
        if first == .stopShadow, strayFds.isEmpty { return endShadow(connection) }
        guard case let .request(request) = first, strayFds.isEmpty else {
            return refuse(connection, "expected a request first")
        }
        if let relative = (request.guestPaths + request.localPaths).first(where: { !$0.hasPrefix("/") }) {
            return refuse(connection, "path \(relative) is not absolute", logging: false)
        }
        tell(connection, .accepted)
        let executor: GuestSyscallExecutor
        do {
            executor = try provider()
        } catch {
            log("swvmm: cannot serve \(request.command) on \(socketPath): \(error)")
            return refuse(connection, "\(error)", logging: false)
        }
        defer { release(executor) }
        let origin = executor.origin, setUp = executor.setUpDuration
        if request.verbose, let origin { tell(connection, .diagnostic("swvmm: \(origin)")) }
        let measuredBefore = executor.measurements
        var measuredAfter = measuredBefore
        func reportCost() {
            measuredAfter = executor.measurements
            if request.verbose, let cost = describeMeasurements(before: measuredBefore, after: measuredAfter) {
                tell(connection, .diagnostic("swvmm: this run in the guest: \(cost)"))
            }
        }
        var settings = configuration
        settings.policy = ShadowPolicy(extraGuestPaths: request.guestPaths, extraLocalPaths: request.localPaths,
                                       allowWrites: request.allowWrites)
        settings.verbose = request.verbose
        settings.fastPath = request.fastPath
        settings.memoStore = request.fastPath ? configuration.memoStore : nil
        settings.diagnostic = { [self] line in tell(connection, .diagnostic(line)) }
        tell(connection, .ready(guestFdRange: settings.guestFdRange))
        guard let (handOver, fds) = nextMessage(connection, timeoutMilliseconds: Self.inspectorTimeoutMilliseconds) else { return }
        guard case let .inspector(pid) = handOver, fds.count == 2, RemoteInspectorCheck.isListener(fds[0]),
              RemoteInspectorCheck.pidfd(fds[1], isFor: pid) else {
            fds.forEach { close($0) }
            return refuse(connection, "expected the inspector's pid with its seccomp listener and pidfd")
        }
        let inspector = RemoteInspector(pid: pid, listener: fds[0], pidfd: fds[1])
        let supervisor = Supervisor(executor: executor, configuration: settings)
        func report() -> RunReport {
            RunReport(counters: supervisor.counters, measuredBefore: measuredBefore, measuredAfter: measuredAfter,
                      origin: origin, setUp: setUp)
        }
        do {
            _ = try supervisor.serve(inspector: inspector, endingWhenReadable: [connection, wake.read])
            reportCost()
            if isStopped {
                tell(connection, .finished(failure: "swvmm is stopping (the VM is shutting down)", report: report()))
            } else if !Self.isReadable(connection) {
                tell(connection, .finished(failure: nil, report: report()))
            }
            // Else the client hung up (or broke the protocol mid-run): there is no one to tell.
        } catch {
            log("swvmm: the run of \(request.command) for pid \(peer.pid) failed: \(error)")
            measuredAfter = executor.measurements
            tell(connection, .finished(failure: "\(error)", report: report()))
        }
    }

    /// `stopShadow`: asks the hook to end S; its line and `finished`, or why not.
    private func endShadow(_ connection: Int32) {
        guard let stopShadow else {
            return refuse(connection, "this VM's swvmm cannot end its shadow process (it ends with the VM)", logging: false)
        }
        do {
            let line = try stopShadow()
            tell(connection, .diagnostic("swvmm: \(line)"))
            tell(connection, .finished(failure: nil, report: RunReport()))
        } catch {
            log("swvmm: cannot end the shadow process on \(socketPath): \(error)")
            refuse(connection, "\(error)", logging: false)
        }
    }
}

extension ShadowControlServer {
    /// Whether `fd` has data or a hang-up waiting, without waiting.
    static func isReadable(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) > 0
    }
}

/// Checks on fds a client hands over, before they are trusted as an inspector's.
enum RemoteInspectorCheck {
    /// Whether `fd` is a seccomp notification listener (its anon inode's name,
    /// kernel/seccomp.c: "seccomp notify").
    static func isListener(_ fd: Int32) -> Bool {
        HostFile.link("/proc/self/fd/\(fd)")?.contains("seccomp notify") == true
    }

    /// Whether `fd` is a pidfd of `pid` (its fdinfo "Pid:" line; -1 once
    /// the process has been reaped, which its starter may already have done).
    static func pidfd(_ fd: Int32, isFor pid: Int32) -> Bool {
        guard pid > 0, let info = HostFile.text("/proc/self/fdinfo/\(fd)"), let value = HostFile.field("Pid:", in: info) else {
            return false
        }
        return value == pid || value == -1
    }
}
