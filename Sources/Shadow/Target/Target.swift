import Guest

/// One virtual CPU of a target, numbered from 0 in the order the target lists them.
///
/// The number is the target's own index (a KVM vCPU index, or the position of a
/// thread in a GDB stub's thread list), not an APIC id.
public struct VCPUID: RawRepresentable, Hashable, Comparable, CustomStringConvertible {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public init(_ index: Int) { self.rawValue = index }
    public static func < (a: VCPUID, b: VCPUID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "vCPU \(rawValue)" }
}

/// Why `Target.resume(until:)` returned. Whatever the case, every vCPU is stopped
/// when it is returned (all-stop), except after `.exited`.
public enum StopEvent: Equatable {
    /// `vcpu` reached an address given to `Target.insertBreakpoint(at:)`;
    /// `registers` are that vCPU's registers at the breakpoint (rip = the address).
    case breakpoint(VCPUID, GuestRegisters)
    /// `vcpu` stopped for another reason; `signal` is the POSIX-style signal
    /// number the target reported (2 = interrupted, 5 = trap, 11 = fault...).
    case stopped(VCPUID, signal: Int)
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
/// `resume(until:)` runs every vCPU until one of them stops the machine. A
/// conformer is used from one thread at a time, except `stop()` (see there).
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

    /// Runs every vCPU until a breakpoint is hit, the guest stops for another
    /// reason, or `timeout` passes (then the guest is stopped again and
    /// `.timeout` is returned). On return every vCPU is stopped.
    func resume(until timeout: Duration) throws -> StopEvent

    /// Stops the guest. Idempotent. It is the one call that may come from
    /// another thread while `resume(until:)` is waiting: that `resume` then
    /// returns `.stopped(_, signal:)` promptly.
    func stop() throws

    /// Executes exactly one instruction on `vcpu` (the others stay stopped),
    /// without taking interrupts, even when a breakpoint is set at its rip:
    /// this is how a vCPU that hit a breakpoint meant for another process is
    /// moved past it. Returns that vCPU's stop (`.stopped(vcpu, signal: 5)`
    /// normally) or `.timeout`.
    func step(_ vcpu: VCPUID, timeout: Duration) throws -> StopEvent

    /// Resumes every vCPU and returns at once: the guest runs until `halt()`.
    /// A breakpoint that fires meanwhile stops the guest; `halt()` collects it.
    func resumeWithoutWaiting() throws

    /// Stops a guest started by `resumeWithoutWaiting()` and waits until it
    /// is stopped. Does nothing when the guest is already stopped.
    func halt() throws

    /// The base and limit of `vcpu`'s interrupt descriptor table (IDTR).
    /// KVM: `KVM_GET_SREGS`; a GDB stub: whatever side channel it offers.
    func idtRegister(of vcpu: VCPUID) throws -> IDTRegister

    /// Lets the guest run on and gives it up (removes breakpoints first). After
    /// `detach()` no other call works. Conformers also detach when released.
    func detach() throws
}

extension Target {
    /// The number of vCPUs.
    public var vcpuCount: Int { vcpus.count }
}
