import Guest
import CShadow
import Glibc
import Synchronization

/// Settings for one supervised run (the `swvmm shadow` options).
public struct SupervisorConfiguration {
    /// Guest/local paths and `--allow-writes`.
    public var policy: ShadowPolicy
    /// Local fd numbers reserved for guest fds.
    public var guestFdRange: GuestFdRange
    /// One line on stderr per refused call (`--verbose`).
    public var verbose: Bool
    /// Run the inspector with ADDR_NO_RANDOMIZE (repeatable call sites).
    public var noRandomize: Bool
    /// Ask for synchronous wake-ups (Linux 6.6+; silently skipped if refused).
    public var synchronousWakeUp: Bool
    /// Where notices and --verbose lines go (default: stderr).
    public var diagnostic: (String) -> Void
    /// After this long without a trapped call the guest is let run (the
    /// executor's `idle()`), so guest time passes while the inspector sleeps
    /// or waits; the next guest call stops it again.
    public var quietPeriod: Duration
    /// Answer what batches can (read-ahead of /proc files, and lookups a
    /// memo predicts); false: every guest call goes the one-call way.
    public var fastPath: Bool
    /// Where memos are read and written for the fast path (nil: none).
    public var memoStore: MemoStore?
    /// Keep the inspector and the thread serving it on one CPU for the run
    /// (`SharedCPU`); the inspector's threads and children share it too.
    public var sharesOneCPU: Bool

    /// The default quiet period: longer than the gap between the calls of a
    /// burst, far shorter than a human notices, and as long as S's default
    /// sleep, so re-parking S (which waits for its sleep to end) never costs
    /// more than the quiet time already spent.
    public static let defaultQuietPeriod: Duration = .milliseconds(20)

    public init(policy: ShadowPolicy = ShadowPolicy(), guestFdRange: GuestFdRange = .standard,
                verbose: Bool = false, noRandomize: Bool = false, synchronousWakeUp: Bool = true,
                quietPeriod: Duration = SupervisorConfiguration.defaultQuietPeriod,
                fastPath: Bool = false, memoStore: MemoStore? = nil, sharesOneCPU: Bool = true,
                diagnostic: @escaping (String) -> Void = Supervisor.writeToStandardError) {
        self.quietPeriod = quietPeriod
        self.sharesOneCPU = sharesOneCPU
        self.fastPath = fastPath
        self.memoStore = memoStore
        self.policy = policy
        self.guestFdRange = guestFdRange
        self.verbose = verbose
        self.noRandomize = noRandomize
        self.synchronousWakeUp = synchronousWakeUp
        self.diagnostic = diagnostic
    }
}

/// Runs an unmodified host command with its machine-state system calls
/// answered by the guest, through a seccomp user-notification listener.
///
/// Usage: `let s = Supervisor(executor: e, configuration: c)`, then
/// `let exit = try s.run(arguments: ["ps", "aux"], environment: env)`;
/// exit with `exit.shellStatus`. The command inherits stdin/stdout/stderr.
/// Used from one thread, except `terminateInspector()`, which any thread may
/// call (it goes through the `running` mutex).
public final class Supervisor: @unchecked Sendable {
    private let configuration: SupervisorConfiguration
    private let redirector: SyscallRedirector
    private var notifications = 0
    private var localCalls = 0
    /// The inspector `run` or `serve` is serving, for `terminateInspector()` on another thread.
    private let running = Mutex<(any SupervisedInspector)?>(nil)
    /// Whether the kernel accepted SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP in the last run.
    public private(set) var synchronousWakeUpActive = false

    public init(executor: GuestSyscallExecutor, configuration: SupervisorConfiguration) {
        self.configuration = configuration
        redirector = SyscallRedirector(executor: executor, policy: configuration.policy,
                                       range: configuration.guestFdRange, verbose: configuration.verbose,
                                       fastPath: configuration.fastPath, memoStore: configuration.memoStore,
                                       diagnostic: configuration.diagnostic)
    }

    /// Counters of the last run.
    public var counters: SupervisorCounters {
        var c = redirector.counters
        c.notifications = notifications
        c.local = localCalls
        return c
    }

    /// Guest fds still open (0 after `run` returns).
    public var openGuestFds: Int { redirector.table.count }

    /// Writes `line` and a newline to fd 2.
    public static func writeToStandardError(_ line: String) {
        writeAll(STDERR_FILENO, line + "\n")
    }

    /// Runs `arguments` (arguments[0] searched in PATH) until it exits;
    /// returns how it ended. Throws `SupervisorError.cannotRun` if it cannot
    /// start, `.executor` if the guest side failed mid-run (the inspector is
    /// then killed), and closes every guest fd it opened in all cases.
    /// `stdio` (tests, benchmarks) replaces the command's fds 0-2 where ≥ 0.
    public func run(arguments: [String], environment: [String], stdio: [Int32] = [-1, -1, -1]) throws -> InspectorExit {
        try configuration.guestFdRange.validate()
        let filter = try SeccompFilter.build(range: configuration.guestFdRange)
        let placeholder = try Supervisor.openPlaceholder()
        defer { close(placeholder) }
        // The inspector inherits this thread's CPU.
        let sharedCPU = configuration.sharesOneCPU ? SharedCPU.pinCallingThread() : nil
        defer { sharedCPU?.release() }
        let process = try InspectorProcess.spawn(
            arguments: arguments, environment: environment, filter: filter,
            noRandomize: configuration.noRandomize,
            minimumOpenFiles: Int(configuration.guestFdRange.upperBound), stdio: stdio)
        defer { redirector.closeAllGuestFds() }
        defer { redirector.finishRun() }
        begin(serving: process)
        defer { running.withLock { $0 = nil } }
        // Whatever ends this run early (the guest side failing, an error
        // serving it), the inspector and its descendants do not outlive it.
        var finished = false
        defer {
            if !finished {
                process.kill()
                _ = try? process.wait()
            }
        }
        _ = try serve(process, placeholder: placeholder, endingWhenReadable: [])
        if let failure = redirector.executorFailure { throw failure }
        let exit = try process.wait()
        finished = true
        return exit
    }

    /// Serves an inspector another process started under the filter for
    /// `configuration.guestFdRange` (a `swvmm shadow --vm` client), until it
    /// exits or one of `watched` becomes readable or hangs up (the client
    /// went away, the server is stopping); then the inspector is killed. The
    /// starter reaps it and knows its exit status. Throws
    /// `SupervisorError.executor` if the guest side failed (the inspector is
    /// then killed); closes every guest fd it opened in all cases.
    public func serve(inspector: RemoteInspector, endingWhenReadable watched: [Int32] = []) throws -> SupervisorCounters {
        try configuration.guestFdRange.validate()
        let placeholder = try Supervisor.openPlaceholder()
        defer { close(placeholder) }
        let sharedCPU = configuration.sharesOneCPU ? SharedCPU.pinCallingThread() : nil
        defer { sharedCPU?.release() }
        sharedCPU?.pin(task: inspector.pid)
        defer { redirector.closeAllGuestFds() }
        defer { redirector.finishRun() }
        begin(serving: inspector)
        defer { running.withLock { $0 = nil } }
        var finished = false
        defer { if !finished { inspector.kill() } }
        let inspectorExited = try serve(inspector, placeholder: placeholder, endingWhenReadable: watched)
        if let failure = redirector.executorFailure { throw failure }
        finished = inspectorExited
        return counters
    }

    /// Kills the running inspector (when swvmm itself is told to stop); `run`
    /// then returns its exit as usual and still closes every guest fd. Safe
    /// from any thread; does nothing when no inspector runs.
    public func terminateInspector() {
        running.withLock { $0?.kill() }
    }

    /// The placeholder installed for guest fds. It cannot be O_PATH:
    /// SECCOMP_IOCTL_NOTIF_ADDFD takes its source with fget(), which refuses
    /// O_PATH files (EBADF; kernel/seccomp.c, fs/file.c). A write-only
    /// /dev/null makes every local read of a guest fd that escapes the filter
    /// fail with EBADF.
    private static func openPlaceholder() throws -> Int32 {
        let placeholder = cshadow_open("/dev/null", O_WRONLY | O_CLOEXEC, 0)
        guard placeholder >= 0 else { throw SupervisorError.systemCall("open /dev/null", errno: -placeholder) }
        return placeholder
    }

    /// Makes `inspector` the one this supervisor serves and `terminateInspector` reaches.
    private func begin(serving inspector: any SupervisedInspector) {
        redirector.inspectorRoot = inspector.pid
        running.withLock { $0 = inspector }
        synchronousWakeUpActive = configuration.synchronousWakeUp
            && cshadow_notif_set_flags(inspector.listener, CSHADOW_USER_NOTIF_FD_SYNC_WAKE_UP) == 0
    }

    /// Answers notifications until the inspector exits (true), one of
    /// `watched` is readable or hung up (false), or the executor fails.
    private func serve(_ process: any SupervisedInspector, placeholder: Int32, endingWhenReadable watched: [Int32]) throws -> Bool {
        var fds = [pollfd(fd: process.listener, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: process.pidfd, events: Int16(POLLIN), revents: 0)]
            + watched.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let quiet = UInt64(max(1, min(60_000, (configuration.quietPeriod.seconds * 1000).rounded(.up)))) * 1_000_000
        var guestCallsAtRelease = redirector.tally.guestCalls
        var guestCallsSeen = guestCallsAtRelease, lastGuestCall = monotonicNanoseconds()
        while redirector.executorFailure == nil {
            // The guest is held only while guest calls come: once none has
            // come for the quiet period, it is let run, however many other
            // notifications (calls kept local, answers from a batch's
            // snapshot) came meanwhile.
            let now = monotonicNanoseconds()
            if redirector.tally.guestCalls != guestCallsSeen {
                guestCallsSeen = redirector.tally.guestCalls
                lastGuestCall = now
            }
            var timeout: Int32 = -1
            if guestCallsSeen != guestCallsAtRelease {
                let quietSoFar = now &- lastGuestCall
                guard quietSoFar < quiet else {
                    guestCallsAtRelease = guestCallsSeen
                    do {
                        try redirector.executor.idle()
                    } catch {
                        throw SupervisorError.executor("letting the guest run: \(error)")
                    }
                    continue
                }
                timeout = Int32((quiet - quietSoFar + 999_999) / 1_000_000)
            }
            let n = poll(&fds, nfds_t(fds.count), timeout)
            if n == 0 { continue }
            if n < 0 {
                if errno == EINTR { continue }
                throw SupervisorError.systemCall("poll", errno: errno)
            }
            if fds[0].revents & Int16(POLLIN) != 0 {
                answerOne(process, placeholder: placeholder)
                continue
            }
            if fds[0].revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
                // No task uses the filter any more; only the exit remains.
                fds[0].fd = -1
            }
            if fds[1].revents & Int16(POLLIN | POLLHUP) != 0 { return true }
            if fds.dropFirst(2).contains(where: { $0.revents != 0 }) { return false }
        }
        return false
    }

    /// Receives one notification and answers it.
    private func answerOne(_ process: any SupervisedInspector, placeholder: Int32) {
        var notification = seccomp_notif()
        guard cshadow_notif_recv(process.listener, &notification) == 0 else {
            // ENOENT: the task went away between poll and recv.
            return
        }
        notifications += 1
        let d = notification.data
        let request = SyscallRequest(
            number: Int(d.nr),
            arguments: [d.args.0, d.args.1, d.args.2, d.args.3, d.args.4, d.args.5],
            pid: Int32(bitPattern: notification.pid))
        let id = notification.id
        let listener = process.listener
        // The calling task's fd table is the one ADDFD fills (a forked inspector has its own).
        let installer = ListenerFdInstaller(listener: listener, notification: id, pid: request.pid, placeholder: placeholder)
        let handled = redirector.handle(request, installer: installer) {
            guard cshadow_notif_id_valid(listener, id) == 0 else { throw SupervisorError.notificationGone }
        }
        if handled.outcome == .continuedLocally { localCalls += 1 }
        var response = seccomp_notif_resp()
        response.id = id
        switch handled.reply {
        case .continueLocally:
            response.flags = CSHADOW_USER_NOTIF_FLAG_CONTINUE
        case .value(let value):
            response.val = value
        case .error(let e):
            response.error = -e
        }
        // ENOENT here: the inspector thread died or was interrupted; nothing to do.
        _ = cshadow_notif_send(listener, &response)
    }
}

/// Installs the write-only /dev/null placeholder into the inspector with
/// SECCOMP_IOCTL_NOTIF_ADDFD, as part of the answer to notification `notification`.
private struct ListenerFdInstaller: GuestFdInstaller {
    let listener: Int32
    let notification: UInt64
    let pid: Int32
    let placeholder: Int32

    /// kcmp(KCMP_FILE) of the fd with itself answers 0 when the task holds
    /// it and EBADF when not (kcmp(2)), with no path walk; readlink of
    /// /proc/PID/fd/N where kcmp is missing (CONFIG_KCMP) or refused.
    func isInUse(_ local: Int32) -> Bool {
        let task = UInt64(UInt32(bitPattern: pid)), fd = UInt64(UInt32(bitPattern: local))
        switch cshadow_raw_syscall(LinuxABI.Syscall.kcmp, task, task, LinuxABI.kcmpFile, fd, fd, 0) {
        case 0: return true
        case -Int(EBADF): return false
        default:
            var link = [CChar](repeating: 0, count: 8)
            return readlink("/proc/\(pid)/fd/\(local)", &link, link.count) >= 0
        }
    }

    func install(at local: Int32, cloexec: Bool) -> Int32 {
        install(file: placeholder, at: local, cloexec: cloexec)
    }

    func install(file: Int32, at local: Int32, cloexec: Bool) -> Int32 {
        var request = seccomp_notif_addfd()
        request.id = notification
        request.flags = CSHADOW_ADDFD_FLAG_SETFD
        request.srcfd = UInt32(bitPattern: file)
        request.newfd = UInt32(bitPattern: local)
        request.newfd_flags = cloexec ? UInt32(O_CLOEXEC) : 0
        return cshadow_notif_addfd(listener, &request)
    }
}
