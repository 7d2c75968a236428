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
}

/// Runs system calls in S on swvmm's own machine (`GuestSyscallExecutor`),
/// on the dedicated vCPU only: S's stub is a loop around one `syscall`, and
/// each time S enters the kernel there its trap hands swvmm S's context. The
/// previous call's result is in rbx (the stub moves it there); the next call
/// is loaded into rax and the argument registers, or S's own sleep goes on.
/// One exit per redirected call; the other vCPUs are never touched.
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

    private struct Request: Sendable {
        let sequence: Int
        let number: Int
        let arguments: [UInt64]
    }

    private struct State: Sendable {
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
    }

    let region: NativeRegion
    private let memory: GuestMemory
    private let root: UInt64
    /// How long a call may take in the guest.
    public let timeout: Duration
    private let state: Mutex<State>
    private let requestReady = DispatchSemaphore(value: 0)
    private let resultReady = DispatchSemaphore(value: 0)

    /// Exits of the dedicated vCPU, and interruptions of the others, so far.
    private let machineCounters: @Sendable () -> (shadowVCPUExits: Int, otherInterruptions: Int)

    /// Whether the VM has stopped (S will never trap again).
    private let machineStopped: @Sendable () -> Bool
    /// Where the dedicated vCPU's thread stands, for the message when S stays away.
    private let shadowVCPUActivity: @Sendable () -> VCPUActivity
    private let originText = Mutex<String?>(nil)
    private let setUp = Mutex<Duration?>(nil)

    init(shadow: ShadowProcess, region: NativeRegion, memory: GuestMemory, timeout: Duration,
         machineStopped: @escaping @Sendable () -> Bool, shadowVCPUActivity: @escaping @Sendable () -> VCPUActivity,
         machineCounters: @escaping @Sendable () -> (shadowVCPUExits: Int, otherInterruptions: Int)) {
        self.machineCounters = machineCounters
        self.machineStopped = machineStopped
        self.shadowVCPUActivity = shadowVCPUActivity
        self.region = region
        self.memory = memory
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
        let activity = shadowVCPUActivity()
        return state.withLock { s in
            if s.failure == nil, s.inFlight == nil, now - s.lastSeen > Self.absenceLimit {
                s.failure = .stale(pid: s.shadow.pid, reason: absenceReason(activity))
            }
            return s.failure
        }
    }

    /// Why S counts as gone after `absenceLimit` away from its loop, with
    /// where its vCPU stood: in the guest without exits (S killed or
    /// stopped, or that CPU halted for good) or held up outside it.
    private func absenceReason(_ activity: VCPUActivity) -> String {
        "it has not come back to its loop for \(Self.absenceLimit) (killed or stopped in the guest; \(activity))"
    }

    /// Asks S its pid (the first call; it also proves S answers).
    func identify() throws {
        let pid = try syscall(LinuxABI.Syscall.getpid, [])
        guard pid > 1 else { throw ShadowError.wrongContext(expected: "S's pid", found: "\(pid)") }
        state.withLock { $0.shadow.pid = pid }
    }

    // MARK: GuestSyscallExecutor

    public var regionAddress: UInt64 { shadow.dataAddress }
    public var regionSize: Int { shadow.regionLength - ShadowStub.dataOffset }

    public func writeRegion(offset: Int, _ bytes: [UInt8]) throws {
        try checkRange(offset, bytes.count)
        try view().write(virtual: regionAddress &+ UInt64(offset), bytes)
    }

    public func readRegion(offset: Int, count: Int) throws -> [UInt8] {
        try checkRange(offset, count)
        return try view().read(virtual: regionAddress &+ UInt64(offset), count: count)
    }

    public func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 {
        guard arguments.count <= 6, number >= 0 else { throw ShadowError.badArgument("system call \(number) with \(arguments.count) arguments") }
        let clock = ContinuousClock()
        let sequence = try state.withLock { s -> Int in
            if let failure = s.failure { throw failure }
            s.sequence += 1
            s.pending = Request(sequence: s.sequence, number: number,
                                arguments: arguments + [UInt64](repeating: 0, count: 6 - arguments.count))
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
            let activity = shadowVCPUActivity()
            let outcome: Result<Int64, ShadowError>? = state.withLock { s in
                if let done = s.completed, done.sequence == sequence {
                    s.statistics.calls += 1
                    return .success(done.result)
                }
                if let failure = s.failure { return .failure(failure) }
                let shadow = s.shadow
                if stopped {
                    s.pending = nil
                    s.failure = .guestGone(during: "a call in S")
                } else if s.pending != nil, now - s.lastSeen > Self.absenceLimit {
                    // Never taken: S has not come back to its loop.
                    s.pending = nil
                    s.failure = .stale(pid: shadow.pid, reason: absenceReason(activity))
                } else if now > deadline {
                    s.pending = nil
                    s.failure = .shadowNotResponding(pid: shadow.pid, seconds: timeout.seconds)
                }
                return s.failure.map { .failure($0) }
            }
            if let outcome { return try outcome.get() }
        }
    }

    /// Calls, exits of the dedicated vCPU (`transitions`), interruptions of
    /// the guest's own vCPUs, and S's traps, restarts and expired holds.
    public var measurements: [String: Int] {
        let s = statistics
        let machine = machineCounters()
        return [ExecutorMeasurement.calls: s.calls, ExecutorMeasurement.transitions: machine.shadowVCPUExits,
                ExecutorMeasurement.otherVCPUInterruptions: machine.otherInterruptions,
                "S traps": s.shadowTraps, "restarts": s.restarts, "expired holds": s.expiredHolds]
    }

    /// No call is coming soon: S goes back to its own sleep between traps.
    public func idle() throws {
        state.withLock { $0.burst = false }
    }

    // MARK: the dedicated vCPU's side

    /// One trapped system call on the dedicated vCPU (its thread, out of KVM_RUN).
    func intercept(_ r: inout GuestRegisters, vcpu: Int) {
        guard r.root == root else { return }
        let now = ContinuousClock().now
        var finished = false
        let restarted: Bool = state.withLock { s in
            s.statistics.shadowTraps += 1
            s.lastSeen = now
            guard let call = s.inFlight else { return false }
            if isRestart(r, of: call) {
                s.statistics.restarts += 1
                return true
            }
            s.completed = (call.sequence, Int64(bitPattern: r.rbx))
            s.inFlight = nil
            finished = true
            return false
        }
        // The kernel backed S up to its `syscall` (a stop signal met the
        // call): it enters again with the same call; let it.
        if restarted { return }
        let leaving = state.withLock { s -> Bool in
            guard s.ending else { return false }
            s.ending = false
            s.left = true
            return true
        }
        if leaving { return endShadow(&r, status: 0) }
        guard state.withLock({ $0.failure == nil }), isAtLoop(r), isIntact() else {
            endTamperedShadow(&r)
            return
        }
        if finished { resultReady.signal() }
        var next = takePending()
        if next == nil, state.withLock({ $0.burst }) {
            if requestReady.wait(timeout: .now() + Self.holdLimit) == .success { next = takePending() }
            if next == nil { state.withLock { $0.statistics.expiredHolds += 1 } }
        }
        let shadow = state.withLock { $0.shadow }
        if let next {
            r.loadSyscall(number: next.number, next.arguments)
        } else if state.withLock({ $0.burst }) {
            r.rdi = shadow.regionBase + UInt64(ForkCode.burstTimespecOffset)
        }
    }

    private func takePending() -> Request? {
        state.withLock { s in
            guard let request = s.pending else { return nil }
            s.pending = nil
            s.inFlight = request
            return request
        }
    }

    /// The kernel restarts a call by moving the return rip back onto the
    /// `syscall` with rax = the call's number again; the arguments are unchanged.
    private func isRestart(_ r: GuestRegisters, of call: Request) -> Bool {
        let a = call.arguments
        return r.rax == UInt64(call.number) && r.rdi == a[0] && r.rsi == a[1] && r.rdx == a[2]
            && r.r10 == a[3] && r.r8 == a[4] && r.r9 == a[5]
    }

    /// S at its loop as the stub leaves it: about to sleep on its own timespec, on its own stack.
    private func isAtLoop(_ r: GuestRegisters) -> Bool {
        let base = state.withLock { $0.shadow.regionBase }
        return r.rcx == base + UInt64(ShadowStub.trapOffset) && r.rax == UInt64(LinuxABI.Syscall.nanosleep)
            && r.rdi == base + UInt64(ShadowStub.timespecOffset) && r.rsi == 0 && r.rsp == base + UInt64(ShadowStub.stackTop)
    }

    /// Page 0 (stub, header, fork code) as written.
    private func isIntact() -> Bool {
        guard let page = try? view().read(virtual: shadow.regionBase, count: region.firstPage.count) else { return false }
        return region.matches(page)
    }

    /// S is no longer what swvmm made: fail the executor and end S (its call becomes exit_group(1)).
    private func endTamperedShadow(_ r: inout GuestRegisters) {
        state.withLock { s in
            if s.failure == nil { s.failure = .stubModified(pid: s.shadow.pid, address: s.shadow.regionBase) }
            s.pending = nil
            s.inFlight = nil
        }
        endShadow(&r, status: 1)
    }

    /// S's call becomes exit_group(`status`): it leaves the guest from its trap.
    private func endShadow(_ r: inout GuestRegisters, status: UInt64) {
        resultReady.signal()
        r.rax = UInt64(LinuxABI.Syscall.exitGroup)
        r.rdi = status
    }

    // MARK: internals

    private func view() throws -> GuestView {
        GuestView(memory: memory, context: state.withLock { $0.shadow.paging })
    }

    private func checkRange(_ offset: Int, _ count: Int) throws {
        guard offset >= 0, count >= 0, offset <= regionSize, count <= regionSize - offset else {
            throw ShadowError.regionOutOfBounds(offset: offset, count: count, size: regionSize)
        }
    }
}
