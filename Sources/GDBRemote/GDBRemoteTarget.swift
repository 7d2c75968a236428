import Guest
import Shadow
import Synchronization

/// `Shadow.Target` over a GDB stub (QEMU's gdbstub): threads are vCPUs,
/// registers come from the numbers in the stub's target description,
/// guest-physical memory goes through `Qqemu.PhyMemMode:1`.
/// Used from one thread at a time, except `stop()`, which the Target protocol
/// lets any thread call while `resume(until:stoppingAt:)` waits.
public final class GDBRemoteTarget: Target, @unchecked Sendable {
    public let client: GDBRemoteClient
    public let vcpus: [VCPUID]
    private let threadIDs: [ThreadID]
    private let fields: [RegisterField]
    private var breakpoints: Set<UInt64> = []
    /// Set by `stop()` from another thread so `resume` reports the stop as such.
    private let stopRequested = Mutex(false)
    /// Guest stops so far (`stops`).
    private let stopCount = Mutex(0)
    public var stops: Int { stopCount.withLock { $0 } }

    /// Connects to `address` ("unix:PATH" or "tcp:HOST:PORT"). Once
    /// `cancellation` is cancelled, every wait on the stub (connecting, the
    /// handshake, a running guest) ends with `GDBRemoteError.cancelled`.
    public convenience init(address: String, timeout: Double = 5, cancellation: Cancellation? = nil) throws {
        try self.init(client: GDBRemoteClient(address: address, timeout: timeout, cancellation: cancellation))
    }

    /// Wraps a connected client; fails if the stub lacks a register shadow context needs.
    public init(client: GDBRemoteClient) throws {
        self.client = client
        threadIDs = client.threads
        vcpus = client.threads.indices.map { VCPUID($0) }
        fields = try RegisterField.table.map { try $0.resolved(in: client.targetDescription) }
    }

    deinit { try? detach() }

    private func thread(_ vcpu: VCPUID) throws -> ThreadID {
        guard threadIDs.indices.contains(vcpu.rawValue) else {
            throw GDBRemoteError.wrongState("no \(vcpu): the stub has \(threadIDs.count) vCPUs")
        }
        return threadIDs[vcpu.rawValue]
    }

    // MARK: registers

    public func registers(of vcpu: VCPUID) throws -> GuestRegisters {
        try client.selectThread(try thread(vcpu))
        let block = try client.readRegisterBlock()
        var registers = GuestRegisters()
        for field in fields {
            var bytes: [UInt8]? = nil
            if let offset = field.blockOffset, offset + field.byteSize <= block.count {
                let slice = block[offset..<offset + field.byteSize]
                if slice.allSatisfy({ $0 != nil }) { bytes = slice.map { $0 ?? 0 } }
            }
            // Not in the `g` block (or marked unavailable): ask for it alone.
            let value = try bytes ?? client.readRegister(field.number)
            field.set(&registers, UInt64(littleEndianBytes: value))
        }
        return registers
    }

    public func setRegisters(_ registers: GuestRegisters, of vcpu: VCPUID) throws {
        let current = try self.registers(of: vcpu)
        for field in fields where field.get(registers) != field.get(current) {
            try client.writeRegister(field.number, bytes: field.get(registers).littleEndianBytes(count: field.byteSize))
        }
    }

    // MARK: breakpoints and running

    public func insertBreakpoint(at virtualAddress: UInt64) throws {
        try client.insertBreakpoint(at: virtualAddress)
        breakpoints.insert(virtualAddress)
    }

    public func removeBreakpoint(at virtualAddress: UInt64) throws {
        try client.removeBreakpoint(at: virtualAddress)
        breakpoints.remove(virtualAddress)
    }

    public func resume(until timeout: Duration, stoppingAt wanted: (VCPUID, GuestRegisters) throws -> Bool) throws -> StopEvent {
        stopRequested.withLock { $0 = false }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var event = try run(until: timeout) { try client.resume() }
        var skipped = 0
        while case let .breakpoint(vcpu, registers) = event {
            if try wanted(vcpu, registers) { return event }
            guard skipped < GDBRemoteTarget.maximumSkips else {
                return .other(vcpu, reason: "more than \(GDBRemoteTarget.maximumSkips) breakpoint hits of other processes in one wait")
            }
            skipped += 1
            // Past the breakpoint: one instruction on that vCPU alone. A step
            // that lands on another breakpoint of ours is a hit like any other.
            let stepped = try step(vcpu, timeout: GDBRemoteTarget.stepTimeout)
            switch stepped {
            case .breakpoint:
                event = stepped
                continue
            case .exited:
                return .exited
            case .timeout:
                return .other(vcpu, reason: "a single-step past a breakpoint did not finish in \(GDBRemoteTarget.stepTimeout)")
            case .interrupted, .debugTrap, .other:
                break
            }
            let remaining = deadline - clock.now
            guard remaining > .zero else { return .timeout }
            event = try run(until: remaining) { try client.resume() }
        }
        return event
    }

    /// Upper bound on hits one `resume` moves past: a guest whose other
    /// processes hit our breakpoints in a tight loop cannot keep it forever.
    static let maximumSkips = 20_000
    /// Time one single-step may take (the step is one instruction).
    static let stepTimeout: Duration = .seconds(5)

    /// Starts the guest with `start`, then waits for the stop; on timeout the
    /// guest is interrupted so it is stopped again when this returns.
    private func run(until timeout: Duration, _ start: () throws -> Void) throws -> StopEvent {
        do {
            try start()
            var timedOut = false
            var reply = try client.waitForStop(timeout: timeout.seconds)
            if reply == nil {
                timedOut = true
                reply = try client.stop()
            }
            stopCount.withLock { $0 += 1 }
            guard let reply else { return .timeout }
            return try event(for: reply, timedOut: timedOut)
        } catch GDBRemoteError.closed {
            return .exited
        }
    }

    private func event(for reply: StopReply, timedOut: Bool) throws -> StopEvent {
        switch reply {
        case .exited, .terminated:
            return .exited
        case let .signal(signal, thread, _):
            let vcpu = try self.vcpu(reporting: thread)
            if signal == GDBRemoteClient.sigtrap {
                let registers = try self.registers(of: vcpu)
                if breakpoints.contains(GDBRemoteTarget.linearPC(registers)) { return .breakpoint(vcpu, registers) }
                return .debugTrap(vcpu)
            }
            let requested = stopRequested.withLock { $0 }
            if signal == GDBRemoteClient.sigint {
                // Our own interrupt after a timeout, unless stop() asked for it too.
                if timedOut && !requested { return .timeout }
                return .interrupted(vcpu)
            }
            return .other(vcpu, reason: "signal \(signal) from the stub")
        }
    }

    /// The vCPU a stop reply names. A reply without `thread:` (a plain `S`
    /// packet) is taken as the first vCPU, which is where an all-stop stub
    /// with one thread reports; a thread the stub never listed is an error,
    /// never silently vCPU 0.
    private func vcpu(reporting thread: ThreadID?) throws -> VCPUID {
        guard let thread else { return VCPUID(0) }
        guard let index = threadIDs.firstIndex(where: { $0.matches(thread) }) else {
            throw GDBRemoteError.badReply(request: "continue",
                                          reply: "stop reply for thread \(thread), which is not among the stub's \(threadIDs.count) threads")
        }
        return VCPUID(index)
    }

    /// The linear address of the next instruction, which is what Z0 matches:
    /// rip in long mode (CS base 0); CS * 16 + IP in real mode (CR0.PE clear,
    /// e.g. firmware). In legacy protected mode the CS base is not available
    /// (QEMU's XML comments it out) and rip is used.
    static func linearPC(_ r: GuestRegisters) -> UInt64 {
        r.cr0 & 1 == 0 ? (UInt64(r.cs) << 4) &+ (r.rip & 0xFFFF) : r.rip
    }

    /// Executes exactly one instruction on `vcpu` (the others stay stopped),
    /// without taking interrupts, even when a breakpoint is set at its rip.
    /// Returns that vCPU's stop (`.debugTrap` normally) or `.timeout`.
    public func step(_ vcpu: VCPUID, timeout: Duration) throws -> StopEvent {
        let thread = try thread(vcpu)
        return try run(until: timeout) { try client.step(thread) }
    }

    public func resumeWithoutWaiting() throws {
        stopRequested.withLock { $0 = false }
        try client.resume()
    }

    public func halt() throws {
        guard client.isRunning else { return }
        do {
            try client.stop()
        } catch GDBRemoteError.closed {
            return
        }
    }

    /// From QEMU's monitor (`info registers -a`): the GDB remote protocol has
    /// no IDTR, and QEMU's x86 target description omits it.
    public func idtRegister(of vcpu: VCPUID) throws -> DescriptorTableRegister {
        _ = try thread(vcpu)
        let text = try client.monitor("info registers -a")
        guard let idtr = MonitorRegisters.idtRegister(in: text, cpuIndex: vcpu.rawValue) else {
            throw GDBRemoteError.badReply(request: "qRcmd,info registers -a", reply: "no IDT= line for CPU#\(vcpu.rawValue) in: \(text.prefix(600))")
        }
        return idtr
    }

    public func stop() throws {
        stopRequested.withLock { $0 = true }
        try client.interrupt()
    }

    public func detach() throws {
        guard client.isAttached else { return }
        if client.isRunning { try client.stop() }
        for address in breakpoints { try? client.removeBreakpoint(at: address) }
        breakpoints.removeAll()
        try client.detach()
    }

    // MARK: PhysicalMemory

    public func read(physical address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard UInt64(buffer.count) <= UInt64.max - address else { throw PhysicalMemoryError.outOfRange(address: address, length: buffer.count) }
        guard buffer.count > 0 else { return }
        try client.setPhysicalMemoryMode(true)
        let bytes: [UInt8]
        do {
            bytes = try client.readMemory(at: address, count: buffer.count)
        } catch GDBRemoteError.errorReply {
            throw PhysicalMemoryError.outOfRange(address: address, length: buffer.count)
        }
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
    }

    public func write(physical address: UInt64, from buffer: UnsafeRawBufferPointer) throws {
        guard UInt64(buffer.count) <= UInt64.max - address else { throw PhysicalMemoryError.outOfRange(address: address, length: buffer.count) }
        guard buffer.count > 0 else { return }
        try client.setPhysicalMemoryMode(true)
        do {
            try client.writeMemory(at: address, bytes: Array(buffer))
        } catch GDBRemoteError.errorReply {
            throw PhysicalMemoryError.outOfRange(address: address, length: buffer.count)
        }
    }
}
