import Synchronization
import Guest

/// Counters of an executor, for measurements.
public struct ExecutorStatistics: Sendable {
    /// System calls executed.
    public var calls = 0
    /// Guest stops (breakpoint hits, steps) the calls needed, parking included.
    public var stops = 0
    /// Host time inside `syscall(_:_:)`, in total.
    public var total: Duration = .zero
    /// Of `total`, the time spent waiting for the guest to stop (guest
    /// execution plus the stub's reply latency); the rest is host-side work.
    public var waiting: Duration = .zero
    /// Calls that had to wait for S to come out of its sleep first.
    public var parkings = 0
}

/// Runs system calls in the shadow process S (`GuestSyscallExecutor`).
///
/// For a call S is caught at its trap point (TRAP, any vCPU, recognised by
/// S's root), given rax/arguments with rip = SYS, resumed, and caught at
/// TRAP again. Between calls of a burst S stays at TRAP and the guest stays
/// stopped; `release()` (or `close()`) lets S and the guest run on. Callers
/// are serialized.
public final class ShadowExecutor: GuestSyscallExecutor {
    public let target: Target
    public let shadow: ShadowProcess
    /// How long S may take to reach its trap point, or to return from a call.
    public var timeout: Duration
    public var regionAddress: UInt64 { shadow.dataAddress }
    public var regionSize: Int { shadow.regionLength - ShadowStub.dataOffset }
    public var statistics: ExecutorStatistics { lock.withLock { _ in stats } }
    /// A batch runs from S's stub in one guest stop (`syscalls(_:tableOffset:)`).
    public var runsBatchesInOneTransition: Bool { true }

    private let lock = Mutex(())
    private var stats = ExecutorStatistics()
    /// S stopped at TRAP, the breakpoint set, the guest stopped.
    private var parked: UserStop?
    /// Whether the guest runs freely (started by `resumeWithoutWaiting`).
    private var guestRunning: Bool
    private var closed = false
    private let expectedStub: [UInt8]
    /// What `close()` sets S's idle countdown to (0: S never ends itself).
    private let idleCountdown: UInt64
    /// Whether this executor has set S's countdown to 0 (held).
    private var countdownHeld = false

    /// An executor for `shadow`; `guestRunning` says whether the guest was
    /// left running (as `ShadowBootstrap.build` leaves it). `idleTimeout`:
    /// how long S may go unused after `close()` before it ends itself.
    public init(target: Target, shadow: ShadowProcess, guestRunning: Bool, timeout: Duration = .seconds(10),
                idleTimeout: Duration? = ShadowConfiguration.defaultIdleTimeout) throws {
        self.target = target
        self.shadow = shadow
        self.guestRunning = guestRunning
        self.timeout = timeout
        let stub = try ShadowStub(regionLength: shadow.regionLength, sleepNanoseconds: shadow.sleepNanoseconds)
        expectedStub = stub.code
        idleCountdown = stub.idleCountdown(for: idleTimeout)
    }

    deinit { try? close() }

    // MARK: GuestSyscallExecutor

    /// Region accesses wait for S at its trap point first. A freshly planted S
    /// is still touching its region page by page (breaking copy-on-write with
    /// a read and a write-back of each page's first byte); a host write that
    /// lands between the read and the write-back of a page (a copy-on-write
    /// fault in between lets the guest stop there) is overwritten with the
    /// old byte, or lands in the page the fault replaces: the first path of
    /// a new S then read as "" (ENOENT). At the trap point the touching is over.
    public func writeRegion(offset: Int, _ bytes: [UInt8]) throws {
        try lock.withLock { _ in
            try checkRange(offset, bytes.count)
            try parkForRegion()
            try view().write(virtual: regionAddress &+ UInt64(offset), bytes)
        }
    }

    public func readRegion(offset: Int, count: Int) throws -> [UInt8] {
        try lock.withLock { _ in
            try checkRange(offset, count)
            try parkForRegion()
            return try view().read(virtual: regionAddress &+ UInt64(offset), count: count)
        }
    }

    /// Parks S (counted like a call's parking) before a region access.
    private func parkForRegion() throws {
        guard parked == nil else { return }
        try measured { loop in _ = try park(&loop) }
    }

    /// Runs `body` with a fresh stop loop, adding its time and stops to the statistics.
    private func measured<T>(_ body: (inout StopLoop) throws -> T) throws -> T {
        let clock = ContinuousClock()
        let start = clock.now
        var loop = StopLoop(target: target)
        defer {
            stats.total += clock.now - start
            stats.stops += loop.stops
            stats.waiting += loop.waiting
        }
        return try body(&loop)
    }

    public func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 {
        try lock.withLock { _ in try measured { loop in
            let s = try park(&loop)
            let registers = try resume(s, with: try s.registers.preparingSyscall(at: shadow.syscallAddress, number: number, arguments),
                                       for: timeout, during: "a call in S", &loop)
            stats.calls += 1
            return registers.result
        } }
    }

    /// Resumes the parked S with `registers` and parks it again at TRAP
    /// (within `limit`), the stub checked; returns the registers there.
    private func resume(_ s: UserStop, with registers: GuestRegisters, for limit: Duration, during what: String,
                        _ loop: inout StopLoop) throws -> GuestRegisters {
        try target.setRegisters(registers, of: s.vcpu)
        parked = nil
        guard let (vcpu, stopped) = try loop.run(until: ContinuousClock().now + limit, during: what, judge: { _, r in
            isS(r) ? .accept : .skip
        }) else {
            try? letGo()
            throw ShadowError.shadowNotResponding(pid: shadow.pid, seconds: limit.seconds)
        }
        try checkStub()
        parked = UserStop(vcpu: vcpu, registers: stopped)
        return stopped
    }

    /// The batch runs from S's stub (`ShadowStub.batchOffset`): the table is
    /// written, S resumed there with rbx = the table, r12 = the count, r13 =
    /// TRAP, and caught at TRAP when the last call has returned: one guest stop.
    public func syscalls(_ calls: [BatchedCall], tableOffset: Int) throws -> [Int64] {
        guard !calls.isEmpty else { return [] }
        let table = try BatchTable.encode(calls)
        return try lock.withLock { _ in try measured { loop in
            try checkRange(tableOffset, table.count)
            let s = try park(&loop)
            let tableAddress = regionAddress &+ UInt64(tableOffset)
            try view().write(virtual: tableAddress, table)
            var registers = s.registers
            registers.rip = shadow.batchAddress
            registers.rbx = tableAddress
            registers.r12 = UInt64(calls.count)
            registers.r13 = shadow.trapAddress
            // A batch is many calls: S gets the one call's time and 100 ms more per call.
            _ = try resume(s, with: registers, for: timeout + .milliseconds(100) * calls.count,
                           during: "a batch of \(calls.count) calls in S", &loop)
            stats.calls += calls.count
            return try BatchTable.results(try view().read(virtual: tableAddress, count: table.count), count: calls.count)
        } }
    }

    public var measurements: [String: Int] {
        let s = statistics
        return [ExecutorMeasurement.calls: s.calls, ExecutorMeasurement.transitions: s.stops]
    }

    // MARK: life cycle

    /// Ends a burst: removes the trap breakpoint and lets the guest (and S's
    /// sleep loop) run on. The next call catches S again.
    public func release() throws {
        try lock.withLock { _ in try letGo() }
    }

    /// Ends S on purpose: parks it, sets its idle countdown to one sleep and
    /// lets it go, so it leaves its loop with exit_group(0) by itself. The
    /// executor is not used afterwards.
    public func endShadow() throws {
        try lock.withLock { _ in
            guard !closed else { return }
            var loop = StopLoop(target: target)
            _ = try park(&loop)
            try writeIdleCountdown(1)
            closed = true
            try letGo()
        }
    }

    /// The supervisor's quiet period passed without a call: `release()`.
    public func idle() throws { try release() }

    /// Like `release()`, and S's idle countdown starts; the executor is not
    /// used afterwards.
    public func close() throws {
        try lock.withLock { _ in
            guard !closed else { return }
            closed = true
            // Best effort: an S that is gone has nothing to count.
            try? writeIdleCountdown(idleCountdown)
            try letGo()
        }
    }

    /// Sets S's idle countdown (the guest stopped meanwhile). S only
    /// decrements it, with one instruction, in its loop; the touch loop never
    /// reaches it (it touches each page's first byte only).
    private func writeIdleCountdown(_ value: UInt64) throws {
        try view().write(virtual: shadow.regionBase &+ UInt64(ShadowStub.idleCountdownOffset), le64(value))
    }

    /// Stops the guest (keeping S where it is) without releasing a parked S.
    public func pauseGuest() throws {
        try lock.withLock { _ in try ensureStopped() }
    }

    // MARK: internals

    private func isS(_ r: GuestRegisters) -> Bool {
        r.rip == shadow.trapAddress && r.inUserMode && r.root == shadow.root
    }

    private func ensureStopped() throws {
        if guestRunning {
            try target.halt()
            guestRunning = false
        }
    }

    private func letGo() throws {
        if parked != nil || !guestRunning {
            try ensureStopped()
            try? target.removeBreakpoint(at: shadow.trapAddress)
            parked = nil
            try target.resumeWithoutWaiting()
            guestRunning = true
        }
    }

    /// S at TRAP, the guest stopped: waits for S to come out of its sleep if needed.
    private func park(_ loop: inout StopLoop) throws -> UserStop {
        if let parked { return parked }
        try ensureStopped()
        try target.insertBreakpoint(at: shadow.trapAddress)
        guard let (vcpu, registers) = try loop.run(until: ContinuousClock().now + timeout, during: "the wait for S at its trap point", judge: { _, r in
            isS(r) ? .accept : .skip
        }) else {
            try? letGo()
            throw ShadowError.shadowNotResponding(pid: shadow.pid, seconds: timeout.seconds)
        }
        stats.parkings += 1
        try checkStub()
        // S does not count down while an executor holds it, however long an
        // inspector waits between calls: from 0 it counts through 2^64.
        // Once per executor is enough; `close()` starts the real countdown.
        if !countdownHeld {
            try writeIdleCountdown(0)
            countdownHeld = true
        }
        let stop = UserStop(vcpu: vcpu, registers: registers)
        parked = stop
        return stop
    }

    /// The stub's code must be what was written (S may have been changed).
    private func checkStub() throws {
        let bytes = try view().read(virtual: shadow.regionBase, count: expectedStub.count)
        guard bytes == expectedStub else {
            try? letGo()
            throw ShadowError.stubModified(pid: shadow.pid, address: shadow.regionBase)
        }
    }

    /// S's address space, walked afresh on every access (GuestView does).
    private func view() throws -> GuestView {
        try ensureStopped()
        return GuestView(memory: target, context: shadow.paging)
    }

    private func checkRange(_ offset: Int, _ count: Int) throws {
        guard offset >= 0, count >= 0, offset <= regionSize, count <= regionSize - offset else {
            throw ShadowError.regionOutOfBounds(offset: offset, count: count, size: regionSize)
        }
    }
}
