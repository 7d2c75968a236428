import CKVM
import Guest
import Synchronization
import VMM

/// The syscall-entry trap on one vCPU: `MSR_LSTAR` points at two bytes
/// `E6 xx` (`out imm8`) found in the guest kernel's own entry text, so every
/// 64-bit `syscall` on that vCPU exits to swvmm at CPL 0 with the caller's
/// whole user context (rax and the arguments, rcx = its return rip, r11 = its
/// rflags, its rsp and cr3). Letting a call through is setting rip to the
/// kernel's real entry before the next KVM_RUN. No guest debugging and no
/// guest page-table edits: hardware-virtualization KVM delivers neither
/// breakpoints nor single steps on the project's KVM host (shared/PLATFORM.md).
///
/// Only the trap's own vCPU is touched: its LSTAR is read and written on its
/// own thread (`VCPUEvent.perform`), its exits are seen by its exit handler;
/// the other vCPUs never stop.
public final class SyscallTrap: Sendable {
    /// Where the trap sits: a guest-virtual address in kernel text holding `E6 port`.
    public struct Site: Equatable, Sendable, CustomStringConvertible {
        public let address: UInt64
        public let port: UInt8
        public var description: String { "\(address.guestHex) (out 0x\(hex(UInt64(port), width: 2)))" }
    }

    /// What an interceptor sees of one trapped system call and may change:
    /// the caller's user registers at syscall entry (rax the number, rdi,
    /// rsi, rdx, r10, r8, r9 the arguments, rcx its return rip, r11 its
    /// rflags, rsp its stack) and, through `cr3`, its address space. Whatever
    /// the interceptor leaves in the general registers enters the kernel's
    /// real entry: an unchanged value lets the call through, a changed rax and
    /// arguments make it another call, a changed rcx returns elsewhere.
    public typealias Interceptor = @Sendable (_ registers: inout GuestRegisters, _ vcpu: Int) -> AfterCall

    /// What becomes of the trap once an interceptor has seen a call.
    public enum AfterCall: Sendable, Equatable {
        /// It stays armed: the caller's next call exits too.
        case stayArmed
        /// LSTAR points back at the kernel's entry as the call goes in:
        /// calls on this vCPU run without exits until a write to the site's
        /// port from user mode that `portHandler` expects, or `arm()`, arms
        /// it again.
        case disarm
    }

    /// Sees a write to the site's port from user mode on this vCPU: a
    /// process the guest let write that port (S, given `ioperm`) telling
    /// swvmm something without a system call. Returns whether it was
    /// expected: then the trap is armed again and the process goes on past
    /// its `out`; otherwise the machine's own port handling applies.
    public typealias PortHandler = @Sendable (_ registers: GuestRegisters, _ vcpu: Int) -> Bool

    /// How long `arm(respectingDisarmFor:)` leaves a trap an interceptor
    /// turned off: a batch in S takes far less, even on an emulated host.
    public static let disarmLimit: Duration = .seconds(5)

    /// What the trap has seen so far.
    public struct Counters: Equatable, Sendable {
        /// Times LSTAR was (re)pointed at the site.
        public var armings = 0
        /// System calls that reached the trap.
        public var trapped = 0
        /// Exits at the site's port that were not a system call (the kernel's own use of those bytes).
        public var notSyscalls = 0
    }

    /// Ports KVM's in-kernel devices take before user space sees them (8259
    /// PICs, 8254 PIT, its speaker port): a trap there would never exit.
    static let inKernelPorts: Set<UInt8> = [0x20, 0x21, 0x40, 0x41, 0x42, 0x43, 0x61, 0xA0, 0xA1]
    /// How far from the kernel's entry the site may be: the entry text itself
    /// first (what KPTI's user page tables map too), then around it.
    static let searchWindows: [UInt64] = [0x1000, 0x2_0000]
    /// Kernel addresses have bit 63 set, user addresses clear (canonical
    /// x86-64 addresses, 4- and 5-level paging alike).
    static let kernelHalf: UInt64 = 1 << 63

    public let handle: VCPUHandle
    private let memory: GuestMemory
    private struct State {
        var site: Site?
        var realEntry: UInt64 = 0
        /// Whether LSTAR points at the site now (`disarm()` points it back).
        var armed = false
        /// When an interceptor turned it off (`AfterCall.disarm`), as `monotonicNanoseconds()`.
        var disarmedByInterceptor: UInt64?
        var counters = Counters()
        var interceptor: Interceptor?
        var portHandler: PortHandler?
    }
    private let state = Mutex(State())

    /// A trap for vCPU `handle` of a machine whose RAM is `memory`; nothing is armed yet.
    public init(handle: VCPUHandle, memory: GuestMemory) {
        self.handle = handle
        self.memory = memory
        handle.exitHandler = { [weak self] exit, vcpu in self?.take(exit, on: vcpu) ?? .notHandled }
    }

    /// Sees every trapped system call before it enters the kernel (nil: all
    /// are let through unchanged). Runs on the vCPU's thread, which is out of
    /// KVM_RUN meanwhile: it must return within about a millisecond, since
    /// other CPUs may be spinning on an IPI to this one.
    public var interceptor: Interceptor? {
        get { state.withLock { $0.interceptor } }
        set { state.withLock { $0.interceptor = newValue } }
    }

    /// Sees writes to the site's port from user mode (nil: the machine's own handling).
    public var portHandler: PortHandler? {
        get { state.withLock { $0.portHandler } }
        set { state.withLock { $0.portHandler = newValue } }
    }

    /// Whether the trap is armed now.
    public var isArmed: Bool { state.withLock { $0.armed } }

    /// The counters so far.
    public var counters: Counters { state.withLock { $0.counters } }
    /// The site, once armed.
    public var site: Site? { state.withLock { $0.site } }
    /// The kernel's own syscall entry (what LSTAR held before the trap), once armed.
    public var realEntry: UInt64? { state.withLock { $0.site == nil ? nil : $0.realEntry } }

    /// Points the vCPU's LSTAR at the trap, once the guest kernel has set its
    /// own entry there; again after the kernel rewrote it. Returns whether the
    /// trap is armed now (or, with `limit`, off for less than `limit` because
    /// an interceptor turned it off). Runs on the vCPU's thread (one exit of that vCPU).
    @discardableResult
    public func arm(respectingDisarmFor limit: Duration? = nil) throws -> Bool {
        if let limit, let since = state.withLock({ $0.disarmedByInterceptor }),
           monotonicNanoseconds() &- since < UInt64(limit.seconds * 1e9) {
            return true
        }
        let armed = Mutex(false)
        let memory = self.memory
        try handle.send(.perform { [self] vcpu in
            let lstar = try vcpu.modelSpecificRegisters([BootMSRs.lstar])[BootMSRs.lstar] ?? 0
            let current = state.withLock { $0.site }
            if let current, lstar == current.address {
                state.withLock { $0.armed = true; $0.disarmedByInterceptor = nil }
                armed.withLock { $0 = true }
                return
            }
            // Not yet set by the kernel (early boot), or not a kernel address: wait.
            guard lstar >= Self.kernelHalf else { return }
            let sregs = try vcpu.specialRegisters()
            let site = try Self.findSite(near: lstar, cr3: sregs.cr3, cr4: sregs.cr4, efer: sregs.efer, memory: memory)
            try vcpu.setModelSpecificRegisters([(BootMSRs.lstar, site.address)])
            state.withLock {
                $0.site = site
                $0.realEntry = lstar
                $0.armed = true
                $0.disarmedByInterceptor = nil
                $0.counters.armings += 1
            }
            armed.withLock { $0 = true }
        })
        return armed.withLock { $0 }
    }

    /// Points LSTAR back at the kernel's own entry: system calls on this vCPU
    /// no longer exit. Runs on the vCPU's thread (one exit of that vCPU).
    public func disarm() throws {
        try handle.send(.perform { [self] vcpu in
            let (armed, entry) = state.withLock { ($0.armed, $0.realEntry) }
            guard armed else { return }
            try vcpu.setModelSpecificRegisters([(BootMSRs.lstar, entry)])
            state.withLock { $0.armed = false; $0.disarmedByInterceptor = nil }
        })
    }

    /// The exit handler: a port write at the site with a user stack is a
    /// system call; one from user mode is for `portHandler`.
    func take(_ exit: VMExit, on vcpu: VirtualCPU) -> ExitDisposition {
        guard case let .portIO(io) = exit, io.direction == .write,
              let (site, entry, armed) = state.withLock({ s in s.site.map { ($0, s.realEntry, s.armed) } }),
              io.port == UInt16(site.port), let regs = try? vcpu.registers() else {
            return .notHandled
        }
        if regs.rip < Self.kernelHalf { return takePortWrite(regs, site: site, armed: armed, on: vcpu) }
        guard armed, regs.rip == site.address else { return .notHandled }
        // `syscall` does not switch stacks: a caller's rsp is a user address.
        // Kernel code running those same bytes would be on a kernel stack.
        guard regs.rsp < Self.kernelHalf else {
            state.withLock { $0.counters.notSyscalls += 1 }
            return .notHandled
        }
        let interceptor = state.withLock { s -> Interceptor? in
            s.counters.trapped += 1
            return s.interceptor
        }
        var next = regs
        var after = AfterCall.stayArmed
        if let interceptor, let sregs = try? vcpu.specialRegisters() {
            var user = GuestRegisters(regs, sregs)
            after = interceptor(&user, vcpu.id)
            next = user.applied(to: regs)
        }
        next.rip = entry
        // Should LSTAR not change, the calls that follow still trap, one exit each.
        if after == .disarm, (try? vcpu.setModelSpecificRegisters([(BootMSRs.lstar, entry)])) != nil {
            state.withLock { $0.armed = false; $0.disarmedByInterceptor = monotonicNanoseconds() }
        }
        return (try? vcpu.setRegisters(next)) == nil ? .pause : .handled
    }

    /// A write to the site's port from user mode: the port handler's, which
    /// arms the trap again when it expected it. rip is left on the `out`,
    /// which KVM completes as it enters again.
    private func takePortWrite(_ regs: kvm_regs, site: Site, armed: Bool, on vcpu: VirtualCPU) -> ExitDisposition {
        guard let handler = state.withLock({ $0.portHandler }), let sregs = try? vcpu.specialRegisters(),
              handler(GuestRegisters(regs, sregs), vcpu.id) else {
            return .notHandled
        }
        // Should this fail, the vCPU's watcher arms it again (`arm(respectingDisarmFor:)`).
        if !armed, (try? vcpu.setModelSpecificRegisters([(BootMSRs.lstar, site.address)])) != nil {
            state.withLock { $0.armed = true; $0.disarmedByInterceptor = nil }
        }
        return .handled
    }

    /// The first `E6 xx` within `searchWindows` of `entry` whose port exits to
    /// user space, read through the page tables of `cr3`.
    static func findSite(near entry: UInt64, cr3: UInt64, cr4: UInt64, efer: UInt64, memory: GuestMemory) throws -> Site {
        let context = try PagingContext(cr3: cr3, cr4: cr4, efer: efer)
        let view = GuestView(memory: memory, context: context)
        for window in searchWindows {
            let start = (entry & ~(window - 1))
            guard let bytes = try? view.read(virtual: start, count: Int(window)) else { continue }
            for index in 0..<(bytes.count - 1) where bytes[index] == outImmediateOpcode
                && !inKernelPorts.contains(bytes[index + 1]) {
                return Site(address: start + UInt64(index), port: bytes[index + 1])
            }
        }
        throw SyscallTrapError.noSite(entry: entry)
    }

    /// `out imm8, al` (Intel SDM Vol. 2B, OUT: opcode E6 ib).
    static let outImmediateOpcode: UInt8 = 0xE6
}

/// Why the trap cannot be set.
public enum SyscallTrapError: Error, Equatable, CustomStringConvertible {
    /// No `out imm8` to a user-space port near the kernel's syscall entry.
    case noSite(entry: UInt64)

    public var description: String {
        switch self {
        case let .noSite(entry):
            return "no 'out imm8' to a port swvmm sees was found near the guest kernel's syscall entry \(entry.guestHex)"
        }
    }
}
