/// The x86-64 vCPU state shadow context reads and sets: general registers,
/// rip and rflags, segment selectors, the FS/GS bases (including the swapgs
/// shadow, MSR_KERNEL_GS_BASE), control registers and EFER.
///
/// A plain value: every field is what the vCPU holds, zero-extended. The one
/// register model of a target, whatever it reads them from (GDB's register
/// numbers in GDBRemote; `kvm_regs` and `kvm_sregs` in VMM's
/// `GuestRegisters+KVM.swift`, since Guest cannot see the KVM C types).
public struct GuestRegisters: Equatable, Hashable, Sendable {
    public var rax: UInt64 = 0, rbx: UInt64 = 0, rcx: UInt64 = 0, rdx: UInt64 = 0
    public var rsi: UInt64 = 0, rdi: UInt64 = 0, rbp: UInt64 = 0, rsp: UInt64 = 0
    public var r8: UInt64 = 0, r9: UInt64 = 0, r10: UInt64 = 0, r11: UInt64 = 0
    public var r12: UInt64 = 0, r13: UInt64 = 0, r14: UInt64 = 0, r15: UInt64 = 0
    public var rip: UInt64 = 0, rflags: UInt64 = 0
    public var cs: UInt16 = 0, ss: UInt16 = 0, ds: UInt16 = 0
    public var es: UInt16 = 0, fs: UInt16 = 0, gs: UInt16 = 0
    public var fsBase: UInt64 = 0, gsBase: UInt64 = 0, kernelGSBase: UInt64 = 0
    public var cr0: UInt64 = 0, cr2: UInt64 = 0, cr3: UInt64 = 0, cr4: UInt64 = 0
    public var efer: UInt64 = 0

    public init() {}

    /// The current privilege level: the low two bits of the CS selector.
    public var cpl: Int { Int(cs & 3) }
}
