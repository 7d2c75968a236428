import Guest
import Glibc

/// Decides and performs one trapped call: local, refused, or marshalled into
/// the guest through the executor. Holds the fd table and the inspector's cwd.
///
/// Everything read from the inspector or returned by the guest is bounded:
/// output copies never exceed what the inspector asked for nor what the
/// guest's return value says, and a return value beyond what was asked is
/// treated as a broken guest (EIO), never trusted.
public final class SyscallRedirector {
    /// AT_FDCWD as the dirfd argument's int.
    static let atFdcwd = Int32(LinuxABI.atFDCWD)
    /// UIO_MAXIOV, include/uapi/linux/uio.h.
    static let maxIovecs = 1024

    /// The executor, timed: its time is the target's share of each call.
    let executor: GuestSyscallExecutor
    private let timedExecutor: TimedExecutor
    /// Routing and write policy.
    public let policy: ShadowPolicy
    /// Guest fds by local placeholder number.
    public internal(set) var table: FileDescriptorTable
    /// The inspector's cwd for routing relative paths.
    public internal(set) var cwd: InspectorCwd = .local
    /// Counters (executor calls and time are counted here).
    public var counters: SupervisorCounters {
        var all = tally
        for (number, count) in redirectedByNumber.enumerated() where count > 0 {
            if let name = SyscallSpecTable.spec(number: number)?.name { all.byName[name, default: 0] += count }
        }
        return all
    }
    /// The counters but for redirected calls by name, which are counted by
    /// number in `redirectedByNumber` (an array index per call, not a hash).
    var tally = SupervisorCounters()
    private var redirectedByNumber: [Int] = []
    /// Own ids per inspector task (`ownIDs(ofTask:)`), at most `maximumKnownTasks`.
    private var ownIDsByTask: [Int32: Set<Int32>] = [:]
    static let maximumKnownTasks = 4096
    /// The path argument of the call being handled, once resolved.
    private var pathResolvedInCall: ResolvedPath??
    /// Set when the call being handled is counted as redirected or refused
    /// (redirected wins: its time is counted).
    private var outcomeInCall: SyscallOutcome?
    /// One line per refused call (`--verbose`), plus always-shown notices.
    let verbose: Bool
    let diagnostic: (String) -> Void
    /// S's socket for network-interface requests (opened at the first one, closed with the other guest fds).
    var interfaceSocket: Int32?
    /// Calls whose refusal `--verbose` has already said (machine calls are said once each).
    var refusalsSaid: Set<String> = []
    /// The inspector's first process: it and its descendants are "the
    /// inspector itself" for calls about processes (nil: the caller's own
    /// thread group, as when the redirector is driven directly).
    public var inspectorRoot: Int32?
    /// Set when the executor failed: the guest side is gone and the run must end.
    public internal(set) var executorFailure: SupervisorError?
    /// Read-ahead and memoized batches (nil: every call goes the one-call way).
    var fastPath: FastPath?
    /// The fast path was asked for, but the executor runs batches one call at a time.
    private let fastPathDeclined: Bool

    /// A redirector for one run. `fastPath`: answer what it can from batches
    /// (read-ahead of /proc files; with `memoStore`, memoized predictions),
    /// where the executor runs a batch in one transition; elsewhere a batch
    /// would cost more than the calls it answers, and every call goes the
    /// one-call way.
    public init(executor: GuestSyscallExecutor, policy: ShadowPolicy, range: GuestFdRange,
                verbose: Bool = false, fastPath: Bool = false, memoStore: MemoStore? = nil,
                diagnostic: @escaping (String) -> Void = { _ in }) {
        timedExecutor = TimedExecutor(executor)
        self.executor = timedExecutor
        self.fastPath = fastPath && executor.runsBatchesInOneTransition ? FastPath(store: memoStore, policy: policy) : nil
        fastPathDeclined = fastPath && self.fastPath == nil
        self.policy = policy
        self.table = FileDescriptorTable(range: range)
        self.verbose = verbose
        self.diagnostic = diagnostic
    }

    /// Handles `request` and says what it was. `validate` is called after the
    /// inspector's memory has been read and before anything runs in the guest
    /// (the TOCTOU check: it throws if the notification is gone); a guest fd
    /// the call opened is put into the inspector through `installer`.
    public func handle(_ request: SyscallRequest, installer: GuestFdInstaller,
                       validate: () throws -> Void = {}) -> HandledCall {
        let start = monotonicNanoseconds()
        let targetBefore = timedExecutor.nanoseconds
        pathResolvedInCall = nil
        outcomeInCall = nil
        let spec = SyscallSpecTable.spec(number: request.number)
        let reply = spec.flatMap { fastPathReply($0, request, validate, installer) } ?? dispatch(spec, request, validate, installer)
        observeListing(request, reply)
        let outcome = outcomeInCall ?? (reply == .continueLocally ? .continuedLocally : .failed)
        if outcome == .redirected {
            // Both figures cover the same calls, so their difference is the host's share.
            tally.redirectedNanoseconds &+= monotonicNanoseconds() &- start
            tally.executorNanoseconds &+= timedExecutor.nanoseconds &- targetBefore
        }
        return HandledCall(reply: reply, outcome: outcome)
    }

    private func dispatch(_ spec: SyscallSpec?, _ request: SyscallRequest, _ validate: () throws -> Void,
                          _ installer: GuestFdInstaller) -> SyscallReply {
        guard let spec else {
            let name = SyscallClassTable.byNumber[request.number]?.name ?? "system call \(request.number)"
            switch SyscallClassTable.callClass(of: request.number) {
            case .local:
                // Only a filter other than the shadow filter traps these.
                return .continueLocally
            case .refused(let errnoValue, let why):
                return refuse(named: name, errnoValue, why, once: true)
            case .routed, .machine:
                // Every routed or machine call has a spec (a test proves it); never run one locally.
                return refuse(named: name, ENOSYS, "no marshalling known", once: true)
            }
        }
        do {
            switch spec.handling {
            case .generic: return try generic(spec, request, validate)
            case .special: return try special(spec, request, validate, installer)
            case .unsupported(let writes): return try unsupported(spec, request, writes: writes)
            case .machine(let rule): return try machine(spec, rule, request, validate)
            }
        } catch {
            return reply(to: error, in: spec.name)
        }
    }

    /// The inspector's answer when handling call `name` threw `error`.
    func reply(to error: any Error, in name: String) -> SyscallReply {
        if let error = error as? SupervisorError {
            if case .notificationGone = error { return .error(EINTR) }
            if case .executor = error, executorFailure == nil { executorFailure = error }
            if verbose { diagnostic("swvmm: \(name): \(error)") }
            return .error(error.inspectorErrno)
        }
        // Anything else came from below the supervisor: S's region could not be
        // read or written (the stub's connection died, the guest is gone). That
        // will not get better: end the run rather than answer EIO forever.
        let failure = SupervisorError.executor("\(name): \(error)")
        if executorFailure == nil { executorFailure = failure }
        if verbose { diagnostic("swvmm: \(failure)") }
        return .error(EIO)
    }

    /// End of a run: the fast path saves what it learned, and forgets its
    /// predictions (they never outlive the run); says how it went under `--verbose`.
    public func finishRun() {
        if fastPathDeclined && verbose {
            diagnostic("swvmm: fast path: off (this target runs a batch one call at a time, so a batch would cost more calls than it saves)")
        }
        guard let fastPath else { return }
        fastPath.finish(warn: diagnostic)
        if verbose { diagnostic("swvmm: \(fastPath.summary)") }
        self.fastPath = FastPath(store: fastPath.store, policy: policy)
    }

    // MARK: Routing

    /// Where a path argument leads.
    enum ResolvedPath: Equatable {
        case local
        /// dirfd and path bytes to give the guest; `absolute` when known.
        case guest(dirfd: Int32, path: [UInt8], absolute: String?)
        /// Cannot be served (message for --verbose).
        case unsupported(String)
    }

    /// Resolves `path` (relative to `dirfd`, a raw argument, if given); the
    /// inspector's own `/proc/<pid>` becomes S's `/proc/self` in the guest.
    func resolve(path: [UInt8], dirfd rawDirfd: UInt64?, pid: Int32, forceGuest: Bool = false) throws -> ResolvedPath {
        let resolved = try resolveRoute(path: path, dirfd: rawDirfd, pid: pid, forceGuest: forceGuest)
        if case let .guest(dirfd, _, absolute?) = resolved, dirfd == Self.atFdcwd,
           let own = InspectorSelfPath.rewrite(absolute, ownIDs: { ownIDs(ofTask: pid) }) {
            return .guest(dirfd: dirfd, path: Array(own.utf8), absolute: own)
        }
        return resolved
    }

    private func resolveRoute(path: [UInt8], dirfd rawDirfd: UInt64?, pid: Int32, forceGuest: Bool) throws -> ResolvedPath {
        let text = String(decoding: path, as: UTF8.self)
        if path.first == UInt8(ascii: "/") {
            let absolute = ShadowPolicy.normalize(text)
            return forceGuest || policy.route(normalizedPath: absolute) == .guest
                ? .guest(dirfd: Self.atFdcwd, path: path, absolute: absolute) : .local
        }
        if let rawDirfd, Int32(truncatingIfNeeded: rawDirfd) != Self.atFdcwd {
            if let entry = table.entry(rawArgument: rawDirfd) {
                let absolute = entry.path.hasPrefix("/") ? ShadowPolicy.normalize(ShadowPolicy.join(entry.path, text)) : nil
                return .guest(dirfd: entry.guestFd, path: path, absolute: absolute)
            }
            return .local
        }
        switch cwd {
        case .guest(let directory):
            let absolute = ShadowPolicy.normalize(ShadowPolicy.join(directory, text))
            if forceGuest || policy.route(normalizedPath: absolute) == .guest {
                return .guest(dirfd: Self.atFdcwd, path: Array(absolute.utf8), absolute: absolute)
            }
            return .unsupported("relative path \"\(text)\" leads from the guest directory \(directory) to the local \(absolute)")
        case .local:
            let directory = try localCwd(pid: pid)
            let joined = ShadowPolicy.join(directory, text)
            let absolute = ShadowPolicy.normalize(joined)
            if forceGuest || policy.route(normalizedPath: absolute) == .guest {
                return .guest(dirfd: Self.atFdcwd, path: Array(joined.utf8), absolute: absolute)
            }
            return .local
        }
    }

    /// The task's own ids (its tid and tgid), read once per task and run: a
    /// task's thread group never changes, and reading /proc/TID/status for
    /// every /proc path was most of the supervisor's own time per call.
    private func ownIDs(ofTask task: Int32) -> Set<Int32> {
        if let known = ownIDsByTask[task] { return known }
        let ids = InspectorSelfPath.ownIDs(ofTask: task)
        if ownIDsByTask.count >= Self.maximumKnownTasks { ownIDsByTask.removeAll() }
        ownIDsByTask[task] = ids
        return ids
    }

    /// The inspector thread's local cwd.
    func localCwd(pid: Int32) throws -> String {
        var buffer = [CChar](repeating: 0, count: InspectorMemory.pathMax + 1)
        let n = readlink("/proc/\(pid)/cwd", &buffer, InspectorMemory.pathMax)
        guard n > 0 else { throw SupervisorError.systemCall("readlink /proc/\(pid)/cwd", errno: errno) }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Reads and resolves the path argument of `spec` (nil path pointer: nil).
    /// Read and resolved once per handled call: the fast path and then the
    /// one-call way may both ask.
    func resolvedPath(_ spec: SyscallSpec, _ request: SyscallRequest) throws -> ResolvedPath? {
        if let resolved = pathResolvedInCall { return resolved }
        guard let index = spec.pathArgument else { return nil }
        let address = request.arguments[index]
        if address == 0 { return nil }
        let bytes = try InspectorMemory(pid: request.pid).readPath(address)
        let dirfd = spec.dirfdArgument.map { request.arguments[$0] }
        let resolved = try resolve(path: bytes, dirfd: dirfd, pid: request.pid, forceGuest: spec.forceGuest)
        pathResolvedInCall = .some(resolved)
        return resolved
    }

    // MARK: Refusals

    func refuse(_ spec: SyscallSpec, _ errnoValue: Int32, _ why: String, once: Bool = false, always: Bool = false) -> SyscallReply {
        refuse(named: spec.name, errnoValue, why, once: once, always: always)
    }

    /// Refuses call `name`; with `once`, `--verbose` says it only the first
    /// time; with `always`, it is said (once) even without `--verbose`: for
    /// refusals a user would otherwise meet as an unexplained error.
    func refuse(named name: String, _ errnoValue: Int32, _ why: String, once: Bool = false, always: Bool = false) -> SyscallReply {
        if outcomeInCall == nil { outcomeInCall = .refused }
        tally.refused += 1
        tally.byName[name, default: 0] += 1
        if always, refusalsSaid.insert(name).inserted {
            diagnostic("swvmm: \(name): \(why): \(errnoText(errnoValue))")
        } else if verbose && (!once || refusalsSaid.insert(name).inserted) {
            diagnostic("swvmm: \(name): \(why): \(errnoText(errnoValue))")
        }
        return .error(errnoValue)
    }

    func unsupported(_ spec: SyscallSpec, _ request: SyscallRequest, writes: Bool) throws -> SyscallReply {
        var onGuest = spec.fdArguments.contains { table.entry(rawArgument: request.arguments[$0]) != nil }
        var what = "guest fd"
        if !onGuest, spec.pathArgument != nil {
            if let resolved = try resolvedPath(spec, request) {
                if case .local = resolved {} else { onGuest = true; what = "guest path" }
            } else if let d = spec.dirfdArgument, table.entry(rawArgument: request.arguments[d]) != nil {
                onGuest = true
            }
        }
        guard onGuest else { return .continueLocally }
        if writes && !policy.allowWrites { return refuse(spec, EROFS, "write to a \(what) without --allow-writes") }
        return refuse(spec, ENOSYS, "not redirected for a \(what)")
    }

    // MARK: Executor

    /// Forgets the path resolved in this call (its dirfd changed).
    func forgetResolvedPath() { pathResolvedInCall = nil }

    /// Runs one guest call; validates the raw result's shape.
    func guestCall(_ number: Int, _ arguments: [UInt64], name: String) throws -> Int64 {
        tally.guestCalls += 1
        let result: Int64
        do {
            result = try executor.syscall(number, arguments)
        } catch let error as SupervisorError {
            throw error
        } catch {
            throw SupervisorError.executor("\(name): \(error)")
        }
        guard result >= -LinuxABI.maximumErrno else {
            throw SupervisorError.guestResultOutOfRange(call: name, result: result, limit: Int64.max)
        }
        return result
    }

    /// Writes `bytes` + NUL into the region; returns the guest address.
    func place(path bytes: [UInt8], _ cursor: inout RegionCursor) throws -> UInt64 {
        let offset = try cursor.reserve(bytes.count + 1)
        try executor.writeRegion(offset: offset, bytes + [0])
        return cursor.address(offset)
    }

    /// A guest fd from a raw result, checked to be an fd.
    func guestFd(_ result: Int64, _ name: String) throws -> Int32 {
        guard result >= 0, result <= Int64(Int32.max) else {
            throw SupervisorError.guestResultOutOfRange(call: name, result: result, limit: Int64(Int32.max))
        }
        return Int32(result)
    }

    /// Closes a guest fd the inspector no longer has; errors are only reported.
    func closeGuest(_ fd: Int32) {
        // A file read ahead has no guest fd: its batch closed it.
        guard fd >= 0 else { return }
        do {
            let r = try guestCall(LinuxABI.Syscall.close, [UInt64(UInt32(bitPattern: fd))], name: "close")
            if r < 0 && verbose { diagnostic("swvmm: closing guest fd \(fd): \(errnoText(Int32(-r)))") }
        } catch {
            diagnostic("swvmm: closing guest fd \(fd): \(error)")
        }
    }

    /// Closes every guest fd still open (end of run) and empties the table.
    public func closeAllGuestFds() {
        for (local, entry) in table.all {
            closeGuest(entry.guestFd)
            table.remove(local: local)
        }
        if let socket = interfaceSocket {
            closeGuest(socket)
            interfaceSocket = nil
        }
    }

    /// Counts a redirected call.
    func countRedirected(_ spec: SyscallSpec) {
        outcomeInCall = .redirected
        tally.redirected += 1
        if spec.number >= redirectedByNumber.count {
            redirectedByNumber += [Int](repeating: 0, count: spec.number + 1 - redirectedByNumber.count)
        }
        redirectedByNumber[spec.number] += 1
    }
}
