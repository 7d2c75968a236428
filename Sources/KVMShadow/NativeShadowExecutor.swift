import Dispatch
import Guest
import Shadow
import Synchronization
import VMM

/// Counters of the native executor, for reports and benchmarks.
public struct NativeExecutorStatistics: Sendable, Equatable {
    /// Calls S ran for an inspector.
    public var calls = 0
    /// S's traps on the dedicated vCPU (each one exit of that vCPU).
    public var shadowTraps = 0
    /// Calls the guest kernel restarted (S's `syscall` ran again, same call).
    public var restarts = 0
    /// Times S was held at its trap for a call that did not come within the hold limit.
    public var expiredHolds = 0
    /// Batches S ran with its trap off, ended by its port write: one exit each.
    public var batchesInOneExit = 0
    /// Calls put off to S's next trap because a page of its region was not there.
    public var deferredCalls = 0
}

/// Runs system calls in S on swvmm's own machine (`GuestSyscallExecutor`),
/// on the dedicated vCPU only: S's stub is a loop around one `syscall`, and
/// each time S enters the kernel there its trap hands swvmm S's context. The
/// previous call's result is in rbx (the stub moves it there); the next call
/// is loaded into rax and the argument registers, or S's own sleep goes on.
/// One exit per redirected call; the other vCPUs are never touched.
///
/// A batch (`syscalls(_:tableOffset:)`) costs one exit in all: S, given
/// `ioperm` for the trap's port, is sent from its trap into the stub's batch
/// runner with the trap off, runs the calls through the kernel's own entry,
/// and ends with an `out` to that port from user mode, where the trap is
/// armed again.
///
/// Nothing S's side says is trusted: S is recognised by its page-table root,
/// at its loop (rcx, rsp, rax, rdi as the stub leaves them) with page 0 of
/// its region as written. Anything else on that root (the stub or region
/// rewritten, registers changed through ptrace) ends S and fails the
/// executor; other processes on the dedicated CPU are let through at once.
public final class NativeShadowExecutor: GuestSyscallExecutor, Sendable {
    /// The longest S is held at its trap waiting for a call: other CPUs may
    /// be spinning on an IPI to the dedicated vCPU meanwhile.
    static let holdLimit: DispatchTimeInterval = .microseconds(1000)
    /// How long S may stay away from its loop before it counts as gone: far
    /// longer than its sleep, even on an emulated host.
    static let absenceLimit: Duration = .seconds(30)

    struct Request: Sendable {
        enum Work: Sendable {
            /// One call: number and six arguments.
            case call(number: Int, arguments: [UInt64])
            /// The stub's batch runner on a `BatchTable` at this guest address.
            case batch(table: UInt64, count: Int)
        }
        let sequence: Int
        let work: Work
    }

    struct State: Sendable {
        var shadow: ShadowProcess
        var pending: Request?
        var inFlight: Request?
        var completed: (sequence: Int, result: Int64)?
        var failure: ShadowError?
        /// Calls are coming: S is held briefly and sleeps briefly.
        var burst = false
        /// `end()` was asked: S's next trap becomes exit_group(0).
        var ending = false
        /// That trap came: S is leaving.
        var left = false
        var lastSeen: ContinuousClock.Instant
        var sequence = 0
        var statistics = NativeExecutorStatistics()
        /// S may write the trap's port (`ioperm` granted): batches cost one exit.
        var portGranted = false
        /// Region writes held for S's next trap (`applyPendingWrites`).
        var pendingWrites: [RegionWrite] = []
    }

    /// Bytes for the region at `offset`.
    struct RegionWrite: Sendable {
        let offset: Int
        let bytes: [UInt8]
    }

    let region: NativeRegion
    let memory: GuestMemory
    let root: UInt64
    /// The trap's port: S's batches end with an `out` there.
    let trapPort: UInt8
    /// How long a call may take in the guest.
    public let timeout: Duration
    let state: Mutex<State>
    let requestReady = DispatchSemaphore(value: 0)
    let resultReady = DispatchSemaphore(value: 0)

    /// Exits of the dedicated vCPU, and interruptions of the others, so far.
    private let machineCounters: @Sendable () -> (shadowVCPUExits: Int, otherInterruptions: Int)

    /// Whether the VM has stopped (S will never trap again).
    private let machineStopped: @Sendable () -> Bool
    /// Where the dedicated vCPU's thread and its guest stand, for the message when S stays away.
    private let shadowVCPUActivity: @Sendable () -> VCPUActivity
    private let shadowVCPUPosition: @Sendable () -> String?
    private let originText = Mutex<String?>(nil)
    private let setUp = Mutex<Duration?>(nil)

    init(shadow: ShadowProcess, region: NativeRegion, memory: GuestMemory, trapPort: UInt8, timeout: Duration,
         machineStopped: @escaping @Sendable () -> Bool, shadowVCPUActivity: @escaping @Sendable () -> VCPUActivity,
         shadowVCPUPosition: @escaping @Sendable () -> String?,
         machineCounters: @escaping @Sendable () -> (shadowVCPUExits: Int, otherInterruptions: Int)) {
        self.machineCounters = machineCounters
        self.machineStopped = machineStopped
        self.shadowVCPUActivity = shadowVCPUActivity
        self.shadowVCPUPosition = shadowVCPUPosition
        self.region = region
        self.memory = memory
        self.trapPort = trapPort
        self.timeout = timeout
        root = shadow.root
        state = Mutex(State(shadow: shadow, lastSeen: ContinuousClock().now))
    }

    /// How S was made or found for the current run (`NativeShadow` sets it).
    public internal(set) var origin: String? {
        get { originText.withLock { $0 } }
        set { originText.withLock { $0 = newValue } }
    }

    /// How long making S took, when `NativeShadow` made it for the run now starting (nil: reused).
    public internal(set) var setUpDuration: Duration? {
        get { setUp.withLock { $0 } }
        set { setUp.withLock { $0 = newValue } }
    }

    /// Ends S at its next trap (its call becomes exit_group(0)) and fails the
    /// executor, so the next run makes a new S. Returns S's pid; nil when the
    /// executor had failed already (S is gone or ending).
    func end() -> Int64? {
        state.withLock { s in
            guard s.failure == nil else { return nil }
            s.failure = .stale(pid: s.shadow.pid, reason: "ended by swvmm shadow --stop-shadow")
            s.ending = true
            s.pending = nil
            return s.shadow.pid
        }
    }

    /// Whether S took the exit_group(0) that `end()` asked for.
    var hasLeft: Bool { state.withLock { $0.left } }

    /// S as known now (its pid once `identify()` has asked it).
    public var shadow: ShadowProcess { state.withLock { $0.shadow } }
    public var statistics: NativeExecutorStatistics { state.withLock { $0.statistics } }
    /// Why the executor can no longer be used (S gone, tampered with, stuck), or nil.
    public var failure: ShadowError? { state.withLock { $0.failure } }

    /// Fails the executor when S has not trapped for longer than S ever
    /// sleeps (killed or stopped in the guest); returns the failure, if any.
    func checkPresence() -> ShadowError? {
        let now = ContinuousClock().now
        let away = state.withLock { s in s.failure == nil && s.inFlight == nil && now - s.lastSeen > Self.absenceLimit }
        let reason = away ? absenceReason() : nil
        return state.withLock { s in
            if let reason, s.failure == nil, s.inFlight == nil, now - s.lastSeen > Self.absenceLimit {
                s.failure = .stale(pid: s.shadow.pid, reason: reason)
            }
            return s.failure
        }
    }

    /// Why S counts as gone after `absenceLimit` away from its loop, with
    /// where its vCPU stood: in the guest without exits (S killed or
    /// stopped, or that CPU halted for good) or held up outside it, and
    /// where the guest was on it. Not under `state`'s lock: reading the
    /// guest's registers takes a trip of the vCPU's thread, whose traps take that lock.
    func absenceReason() -> String {
        let position = shadowVCPUPosition().map { "; the guest there: \($0)" } ?? ""
        return "it has not come back to its loop for \(Self.absenceLimit) (killed or stopped in the guest; \(shadowVCPUActivity())\(position))"
    }

    /// Asks S its pid (the first call; it also proves S answers), and lets
    /// S write the trap's port, for batches in one exit; without that (a
    /// kernel in lockdown refuses `ioperm`) batches run call by call.
    func identify() throws {
        let pid = try syscall(LinuxABI.Syscall.getpid, [])
        guard pid > 1 else { throw ShadowError.wrongContext(expected: "S's pid", found: "\(pid)") }
        let granted = try syscall(LinuxABI.Syscall.ioperm, [UInt64(trapPort), 1, 1]) == 0
        state.withLock {
            $0.shadow.pid = pid
            $0.portGranted = granted
        }
    }

    // MARK: GuestSyscallExecutor

    public var regionAddress: UInt64 { shadow.dataAddress }
    public var regionSize: Int { shadow.regionLength - ShadowStub.dataOffset }

    /// Held until S's next trap, where the dedicated vCPU's thread writes it
    /// before handing S its call (`applyPendingWrites`).
    public func writeRegion(offset: Int, _ bytes: [UInt8]) throws {
        try checkRange(offset, bytes.count)
        try state.withLock { s in
            if let failure = s.failure { throw failure }
            s.pendingWrites.append(RegionWrite(offset: offset, bytes: bytes))
        }
    }

    /// The region as S's memory has it, with the writes still held over it.
    public func readRegion(offset: Int, count: Int) throws -> [UInt8] {
        try checkRange(offset, count)
        var bytes = try view().read(virtual: regionAddress &+ UInt64(offset), count: count)
        for write in state.withLock({ $0.pendingWrites }) {
            let start = max(offset, write.offset), end = min(offset + count, write.offset + write.bytes.count)
            guard start < end else { continue }
            bytes.replaceSubrange(start - offset ..< end - offset, with: write.bytes[(start - write.offset) ..< (end - write.offset)])
        }
        return bytes
    }

    /// Writes the held region writes through S's page tables. Called on the
    /// dedicated vCPU's thread at S's trap: S's address space is live on
    /// that CPU, so the guest kernel cannot move one of its pages (page
    /// migration, compaction) without a TLB-flush IPI to it, which waits
    /// until the vCPU runs again; a write made from elsewhere could land in
    /// a page the kernel has just freed. Returns false, keeping the writes,
    /// when a page is not there (being moved): S then sleeps and the call
    /// waits for its next trap.
    func applyPendingWrites() -> Bool {
        let writes = state.withLock { $0.pendingWrites }
        guard !writes.isEmpty else { return true }
        guard let view = try? view() else { return false }
        for write in writes {
            guard (try? view.write(virtual: regionAddress &+ UInt64(write.offset), write.bytes)) != nil else { return false }
        }
        state.withLock { $0.pendingWrites.removeFirst(writes.count) }
        return true
    }

    public func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 {
        guard arguments.count <= 6, number >= 0 else { throw ShadowError.badArgument("system call \(number) with \(arguments.count) arguments") }
        let result = try run(.call(number: number, arguments: arguments + [UInt64](repeating: 0, count: 6 - arguments.count)),
                             timeout: timeout, during: "a call in S")
        state.withLock { $0.statistics.calls += 1 }
        return result
    }

    /// One exit for the whole batch where S may write the trap's port;
    /// call by call otherwise.
    public func syscalls(_ calls: [BatchedCall], tableOffset: Int) throws -> [Int64] {
        guard !calls.isEmpty else { return [] }
        guard runsBatchesInOneTransition else { return try BatchTable.runOneByOne(calls, on: self) }
        let table = try BatchTable.encode(calls)
        try writeRegion(offset: tableOffset, table)
        // A batch is many calls: the one call's time and 100 ms more per call.
        _ = try run(.batch(table: regionAddress &+ UInt64(tableOffset), count: calls.count),
                    timeout: timeout + .milliseconds(100) * calls.count, during: "a batch of \(calls.count) calls in S")
        state.withLock { $0.statistics.calls += calls.count }
        return try BatchTable.results(try readRegion(offset: tableOffset, count: table.count), count: calls.count)
    }

    public var runsBatchesInOneTransition: Bool { state.withLock { $0.portGranted } }

    /// Hands `work` to S's next trap and waits for its end (a call's result;
    /// 0 for a batch, whose results are in its table).
    private func run(_ work: Request.Work, timeout: Duration, during what: String) throws -> Int64 {
        let clock = ContinuousClock()
        let sequence = try state.withLock { s -> Int in
            if let failure = s.failure { throw failure }
            s.sequence += 1
            s.pending = Request(sequence: s.sequence, work: work)
            s.completed = nil
            s.burst = true
            return s.sequence
        }
        requestReady.signal()
        let deadline = clock.now + timeout
        while true {
            _ = resultReady.wait(timeout: .now() + .milliseconds(50))
            let now = clock.now
            let stopped = machineStopped()
            let away = state.withLock { s in s.pending != nil && now - s.lastSeen > Self.absenceLimit }
            let reason = away && !stopped ? absenceReason() : nil
            let outcome: Result<Int64, ShadowError>? = state.withLock { s in
                if let done = s.completed, done.sequence == sequence { return .success(done.result) }
                if let failure = s.failure { return .failure(failure) }
                let shadow = s.shadow
                if stopped {
                    s.pending = nil
                    s.failure = .guestGone(during: what)
                } else if let reason, s.pending != nil, now - s.lastSeen > Self.absenceLimit {
                    // Never taken: S has not come back to its loop.
                    s.pending = nil
                    s.failure = .stale(pid: shadow.pid, reason: reason)
                } else if now > deadline {
                    s.pending = nil
                    s.failure = .shadowNotResponding(pid: shadow.pid, seconds: timeout.seconds)
                }
                return s.failure.map { .failure($0) }
            }
            if let outcome { return try outcome.get() }
        }
    }

    /// The measurement counting batches run in one exit.
    public static let batchesMeasurement = "batches in one exit"

    /// Calls, exits of the dedicated vCPU (`transitions`), interruptions of
    /// the guest's own vCPUs, and S's traps, restarts, expired holds and batches.
    public var measurements: [String: Int] {
        let s = statistics
        let machine = machineCounters()
        return [ExecutorMeasurement.calls: s.calls, ExecutorMeasurement.transitions: machine.shadowVCPUExits,
                ExecutorMeasurement.otherVCPUInterruptions: machine.otherInterruptions,
                "S traps": s.shadowTraps, "restarts": s.restarts, "expired holds": s.expiredHolds, "deferred calls": s.deferredCalls,
                Self.batchesMeasurement: s.batchesInOneExit]
    }

    /// No call is coming soon: S goes back to its own sleep between traps.
    public func idle() throws {
        state.withLock { $0.burst = false }
    }

    // MARK: internals

    func view() throws -> GuestView {
        GuestView(memory: memory, context: state.withLock { $0.shadow.paging })
    }

    private func checkRange(_ offset: Int, _ count: Int) throws {
        guard offset >= 0, count >= 0, offset <= regionSize, count <= regionSize - offset else {
            throw ShadowError.regionOutOfBounds(offset: offset, count: count, size: regionSize)
        }
    }
}
