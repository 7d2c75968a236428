import Guest

/// Why `Target.resume(until:stoppingAt:)` returned. Whatever the case, every
/// vCPU is stopped when it is returned (all-stop), except after `.exited`.
public enum StopEvent: Equatable, Sendable {
    /// `vcpu` reached an address given to `Target.insertBreakpoint(at:)` and
    /// the caller wanted that hit; `registers` are that vCPU's registers at
    /// the breakpoint (rip = the address).
    case breakpoint(VCPUID, GuestRegisters)
    /// The guest stopped because `Target.stop()` asked it to.
    case interrupted(VCPUID)
    /// `vcpu` reported a debug trap that is no breakpoint of ours (the tail
    /// of a single-step, or a breakpoint removed as it fired): harmless.
    case debugTrap(VCPUID)
    /// `vcpu` stopped for any other reason, in the target's words (a fault
    /// the stub reports, a failed step...); news to the caller.
    case other(VCPUID, reason: String)
    /// Nothing happened before the timeout; the target stopped the guest again.
    case timeout
    /// The guest (or the connection to it) ended; no further calls will work.
    case exited
}

/// Shadow context's whole view of a virtual machine: its vCPUs' registers,
/// execution breakpoints, running and stopping, and guest-physical memory
/// (through `PhysicalMemory`).
///
/// The model is *all-stop*: between calls the whole guest is stopped, and
/// `resume(until:stoppingAt:)` runs every vCPU until one of them stops the
/// machine. Stops carry no debugger-specific detail (no GDB signal numbers),
/// and moving past breakpoints meant for other processes is the target's
/// business. A conformer is used from one thread at a time, except `stop()`
/// (see there).
/// Implementations: swvmm's own KVM machine, and a GDB remote stub (QEMU).
public protocol Target: PhysicalMemory {
    /// The guest's vCPUs, in index order. Fixed for the life of the target.
    var vcpus: [VCPUID] { get }

    /// Reads `vcpu`'s registers (the guest must be stopped).
    func registers(of vcpu: VCPUID) throws -> GuestRegisters

    /// Sets `vcpu`'s registers. Conformers write only the fields that differ
    /// from the vCPU's current values, so an unchanged control or segment
    /// register is never rewritten.
    func setRegisters(_ registers: GuestRegisters, of vcpu: VCPUID) throws

    /// Stops the guest when any vCPU is about to execute the instruction at
    /// guest-virtual `virtualAddress` (in whatever address space is current).
    /// The guest cannot see the breakpoint. Inserting one twice is harmless.
    func insertBreakpoint(at virtualAddress: UInt64) throws

    /// Removes a breakpoint set by `insertBreakpoint(at:)`.
    func removeBreakpoint(at virtualAddress: UInt64) throws

    /// Runs every vCPU until a breakpoint hit for which `wanted` is true,
    /// the guest stops for another reason, or `timeout` passes (then the
    /// guest is stopped again and `.timeout` is returned). On return every
    /// vCPU is stopped.
    ///
    /// A hit `wanted` declines (one meant for another process: breakpoints
    /// stop every process at that address) is the target's to move past: the
    /// vCPU executes the instruction under the breakpoint, without taking
    /// interrupts, and the guest runs on; the caller never sees that hit.
    /// `wanted` is called once per hit, with the guest stopped, and may read
    /// and change registers and memory.
    func resume(until timeout: Duration, stoppingAt wanted: (VCPUID, GuestRegisters) throws -> Bool) throws -> StopEvent

    /// Stops the guest. Idempotent. It is the one call that may come from
    /// another thread while `resume(until:stoppingAt:)` is waiting: that
    /// `resume` then returns `.interrupted` promptly.
    func stop() throws

    /// How many times the guest has stopped under this target so far (each
    /// breakpoint hit, each step past one, each timeout), for measurements.
    var stops: Int { get }

    /// Resumes every vCPU and returns at once: the guest runs until `halt()`.
    /// A breakpoint that fires meanwhile stops the guest; `halt()` collects it.
    func resumeWithoutWaiting() throws

    /// Stops a guest started by `resumeWithoutWaiting()` and waits until it
    /// is stopped. Does nothing when the guest is already stopped.
    func halt() throws

    /// The base and limit of `vcpu`'s interrupt descriptor table (IDTR).
    /// KVM: `KVM_GET_SREGS`; a GDB stub: whatever side channel it offers.
    func idtRegister(of vcpu: VCPUID) throws -> DescriptorTableRegister

    /// Lets the guest run on and gives it up (removes breakpoints first). After
    /// `detach()` no other call works. Conformers also detach when released.
    func detach() throws
}

extension Target {
    /// The number of vCPUs.
    public var vcpuCount: Int { vcpus.count }

    /// Runs the guest until any breakpoint hit (see `resume(until:stoppingAt:)`).
    public func resume(until timeout: Duration) throws -> StopEvent {
        try resume(until: timeout) { _, _ in true }
    }
}
