import Dispatch
import Glibc
import Guest
import Shadow
import Synchronization
import VMM

/// Shadow context on swvmm's own machine (`swvmm --shadow`): hands out the
/// executor for S on the dedicated vCPU, making S first when there is none
/// or the last one can no longer be used (killed, tampered with, stuck).
public final class NativeShadow: Sendable {
    /// S's sleep while an inspector's calls are coming (its own sleep, the
    /// configuration's, is used between runs).
    public static let burstSleepNanoseconds: UInt64 = 1_000_000
    /// How long the borrowed process may take to come back once taken.
    static let borrowedReturnLimit: Duration = .seconds(60)

    /// How the last S was made.
    public struct BuildReport: Sendable {
        /// From arming the other vCPUs to S answering its first call.
        public var total: Duration
        /// The process borrowed to make S.
        public var borrowedPID: Int64
        /// Candidates turned down (PID 1, not root...).
        public var rejectedCandidates: Int
        /// Why the previous S was replaced (nil: there was none).
        public var replaced: String?
    }

    let machine: Machine
    let shadowVCPU: ShadowVCPU
    let configuration: ShadowConfiguration
    private let current = Mutex<NativeShadowExecutor?>(nil)
    private let otherTraps = Mutex<[SyscallTrap]?>(nil)
    private let building = Mutex(())

    /// Shadow context for `machine`, whose dedicated vCPU `shadowVCPU` watches.
    /// `configuration.callTimeout` bounds each call (never below the time S
    /// may be away before it counts as gone); `userContextTimeout` the wait
    /// for a process to borrow.
    public init(machine: Machine, shadowVCPU: ShadowVCPU, configuration: ShadowConfiguration = ShadowConfiguration()) {
        self.machine = machine
        self.shadowVCPU = shadowVCPU
        var configuration = configuration
        configuration.dedicatedCPU = shadowVCPU.index
        self.configuration = configuration
    }

    /// The executor for the current S, made first if needed (then with how).
    public func executor() throws -> (NativeShadowExecutor, BuildReport?) {
        try building.withLock { _ in
            let previous = current.withLock { $0 }
            guard !machineStopped else { throw ShadowError.guestGone(during: "the wait for the shadow process") }
            if let previous, previous.checkPresence() == nil {
                previous.origin = "reusing shadow process pid \(previous.shadow.pid) on CPU \(shadowVCPU.index)"
                previous.setUpDuration = nil
                return (previous, nil)
            }
            var (executor, report) = try build()
            report.replaced = previous?.failure.map { "\($0)" }
            executor.origin = "built shadow process pid \(executor.shadow.pid) on CPU \(shadowVCPU.index) in "
                + "\(report.total) (borrowed pid \(report.borrowedPID)\(report.replaced.map { "; the last one was given up: \($0)" } ?? ""))"
            executor.setUpDuration = report.total
            current.withLock { $0 = executor }
            return (executor, report)
        }
    }

    /// Ends the current S (`swvmm shadow --vm --stop-shadow`): its next trap
    /// becomes exit_group(0) and its executor fails, so the next run makes a
    /// new S. Waits for that trap (S's own sleep away): a bootstrap started
    /// before it would take the dedicated vCPU's trap and leave the old S
    /// sleeping in the guest. Returns a line saying what was done.
    public func endShadow() -> String {
        building.withLock { _ in
            guard let executor = current.withLock({ $0 }), let pid = executor.end() else {
                return "no shadow process to end on CPU \(shadowVCPU.index) (the next run makes one)"
            }
            let clock = ContinuousClock()
            let deadline = clock.now + NativeShadowExecutor.absenceLimit
            while !executor.hasLeft, !machineStopped, clock.now < deadline { usleep(1000) }
            guard executor.hasLeft else {
                return "shadow process pid \(pid) on CPU \(shadowVCPU.index) was told to end but has not trapped since "
                    + "(stopped in the guest?); the next run makes a new one"
            }
            return "ended shadow process pid \(pid) on CPU \(shadowVCPU.index) (the next run makes a new one)"
        }
    }

    /// Times the guest's other vCPUs have left the guest for swvmm's sake
    /// (pauses and jobs on their threads, arming included). The issue's
    /// promise: this does not move while S serves an inspector.
    public var interruptionsOfOtherVCPUs: Int {
        machine.vcpuHandles.filter { $0.id != shadowVCPU.index }.map { $0.pauseCount + $0.eventCount }.reduce(0, +)
    }

    /// What S did, for swvmm's report at exit (nil when no S was made).
    public var report: String? {
        guard let executor = current.withLock({ $0 }) else { return nil }
        let s = executor.statistics
        let state = executor.failure.map { "; it was given up: \($0)" } ?? ""
        return "shadow process pid \(executor.shadow.pid) on vCPU \(shadowVCPU.index): \(s.calls) calls for inspectors, "
            + "\(s.shadowTraps) traps, \(s.restarts) restarts\(state); the guest's other vCPUs were interrupted "
            + "\(interruptionsOfOtherVCPUs) times in all (arming and disarming them for S's bootstraps)"
    }

    /// Whether the machine has stopped (its vCPU threads have ended).
    var machineStopped: Bool { machine.vcpuHandles.contains { $0.state == .stopped } }

    /// Exits the dedicated vCPU has taken so far.
    public var shadowVCPUExits: Int { shadowVCPU.trap.handle.exitCount }

    private func traps() throws -> [SyscallTrap] {
        try otherTraps.withLock { traps in
            if let traps { return traps }
            let made = try (0 ..< machine.vcpuHandles.count).filter { $0 != shadowVCPU.index }.map { index in
                guard let handle = machine.vcpuHandle(index) else { throw ShadowVCPUError.noSuchVCPU(index) }
                return SyscallTrap(handle: handle, memory: machine.memory)
            }
            traps = made
            return made
        }
    }

    private func build() throws -> (NativeShadowExecutor, BuildReport) {
        let clock = ContinuousClock()
        let start = clock.now
        let shadowTrap = shadowVCPU.trap
        guard try shadowTrap.arm() else { throw NativeShadowError.kernelNotReady }
        let bootstrap = try NativeBootstrap(memory: machine.memory, configuration: configuration,
                                            shadowCPU: shadowVCPU.index, burstSleepNanoseconds: Self.burstSleepNanoseconds)
        let others = try traps()
        let interceptor: SyscallTrap.Interceptor = { registers, vcpu in
            bootstrap.intercept(&registers, vcpu: vcpu)
            return .stayArmed
        }
        shadowTrap.interceptor = interceptor
        defer {
            for trap in others { trap.interceptor = nil }
            if case .done = bootstrap.phase {} else { shadowTrap.interceptor = nil }
        }
        for trap in others {
            trap.interceptor = interceptor
            guard try trap.arm() else {
                disarm(others)
                throw NativeShadowError.kernelNotReady
            }
        }
        bootstrap.startChoosing()
        try waitForBorrowedProcess(bootstrap, others: others)
        let shadow = try waitForShadow(bootstrap)
        // S has its CPU to itself: a call is only overdue once S has been away
        // as long as it may be before it counts as gone (an emulated, loaded
        // host can take seconds for one call).
        let callTimeout = max(configuration.callTimeout, NativeShadowExecutor.absenceLimit)
        let shadowHandle = shadowTrap.handle
        guard let site = shadowTrap.site else { throw NativeShadowError.kernelNotReady }
        let executor = NativeShadowExecutor(shadow: shadow, region: bootstrap.region, memory: machine.memory,
                                            trapPort: site.port, timeout: callTimeout, machineStopped: { [self] in machineStopped },
                                            shadowVCPUActivity: { shadowHandle.activity },
                                            shadowVCPUPosition: { shadowHandle.guestPosition() }) { [self] in
            (shadowVCPUExits, interruptionsOfOtherVCPUs)
        }
        shadowTrap.interceptor = { registers, vcpu in executor.intercept(&registers, vcpu: vcpu) }
        shadowTrap.portHandler = { registers, vcpu in executor.portWritten(registers, vcpu: vcpu) }
        try executor.identify()
        return (executor, BuildReport(total: clock.now - start, borrowedPID: shadow.borrowedPID,
                                      rejectedCandidates: bootstrap.rejected))
    }

    /// Waits until a process was borrowed and is back (or none came), then
    /// disarms the other vCPUs: from here on they are never touched.
    private func waitForBorrowedProcess(_ bootstrap: NativeBootstrap, others: [SyscallTrap]) throws {
        let clock = ContinuousClock()
        let choosingDeadline = clock.now + configuration.userContextTimeout
        let returnDeadline = choosingDeadline + Self.borrowedReturnLimit
        defer { disarm(others) }
        while true {
            switch bootstrap.phase {
            case .waitingForShadow, .done: return
            case let .failed(reason): throw NativeShadowError.bootstrapFailed(reason)
            default: break
            }
            if clock.now > choosingDeadline, bootstrap.abandonIfNotBorrowed("none chosen") {
                if case .failed = bootstrap.phase {
                    throw NativeShadowError.noCaller(seconds: configuration.userContextTimeout.seconds,
                                                     rejected: bootstrap.rejected)
                }
                continue
            }
            if machineStopped { throw ShadowError.guestGone(during: "S's bootstrap") }
            // A borrowed process that never comes back was killed mid-way:
            // disarming is then safe, nothing of it is left to put back.
            if clock.now > returnDeadline { throw NativeShadowError.borrowedProcessGone(seconds: Self.borrowedReturnLimit.seconds) }
            _ = bootstrap.progress.wait(timeout: .now() + .milliseconds(100))
        }
    }

    private func waitForShadow(_ bootstrap: NativeBootstrap) throws -> ShadowProcess {
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.callTimeout
        while true {
            switch bootstrap.phase {
            case let .done(shadow): return shadow
            case let .failed(reason): throw NativeShadowError.bootstrapFailed(reason)
            default: break
            }
            if machineStopped { throw ShadowError.guestGone(during: "the wait for S on its CPU") }
            if clock.now > deadline {
                bootstrap.abandon("S did not reach its CPU")
                throw NativeShadowError.shadowNotOnItsCPU(cpu: shadowVCPU.index, seconds: configuration.callTimeout.seconds)
            }
            _ = bootstrap.progress.wait(timeout: .now() + .milliseconds(100))
        }
    }

    private func disarm(_ traps: [SyscallTrap]) {
        for trap in traps { try? trap.disarm() }
    }
}

/// Why native shadow context could not make S.
public enum NativeShadowError: Error, CustomStringConvertible {
    /// The guest kernel has not set its syscall entry yet.
    case kernelNotReady
    /// No process made a system call on the guest's own vCPUs in time.
    case noCaller(seconds: Double, rejected: Int)
    /// A step in the borrowed process failed (the process is put back as it was).
    case bootstrapFailed(String)
    /// The borrowed process did not come back (killed while borrowed).
    case borrowedProcessGone(seconds: Double)
    /// S was made but never trapped on its CPU.
    case shadowNotOnItsCPU(cpu: Int, seconds: Double)

    public var description: String {
        switch self {
        case .kernelNotReady:
            return "the guest kernel has not set up its system call entry yet (is it still booting?)"
        case let .noCaller(seconds, rejected):
            return "no process to borrow: none made a system call on the guest's vCPUs within \(Int(seconds)) s"
                + " (\(rejected) turned down: PID 1 and non-root processes are never borrowed); run something in the guest"
        case let .bootstrapFailed(reason):
            return "making the shadow process failed: \(reason)"
        case let .borrowedProcessGone(seconds):
            return "the process borrowed to make the shadow process did not come back within \(Int(seconds)) s (killed?)"
        case let .shadowNotOnItsCPU(cpu, seconds):
            return "the shadow process did not reach its CPU \(cpu) within \(Int(seconds)) s (its sched_setaffinity failed?)"
        }
    }
}
