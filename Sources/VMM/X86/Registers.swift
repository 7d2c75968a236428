import Guest

/// General-purpose register state at the kernel's 64-bit entry (plain Swift; the KVM layer makes a `kvm_regs`).
public struct BootRegisters: Sendable, Equatable {
    /// RFLAGS bit 1 is reserved and always reads 1 (SDM Vol. 1 §3.4.3); IF is clear.
    public static let rflagsReserved: UInt64 = 1 << 1

    public var rax: UInt64 = 0, rbx: UInt64 = 0, rcx: UInt64 = 0, rdx: UInt64 = 0
    public var rsi: UInt64 = 0, rdi: UInt64 = 0, rsp: UInt64 = 0, rbp: UInt64 = 0
    public var r8: UInt64 = 0, r9: UInt64 = 0, r10: UInt64 = 0, r11: UInt64 = 0
    public var r12: UInt64 = 0, r13: UInt64 = 0, r14: UInt64 = 0, r15: UInt64 = 0
    public var rip: UInt64 = 0
    public var rflags: UInt64 = rflagsReserved

    /// boot.rst, "64-bit Boot Protocol": jump to the entry with %rsi holding the
    /// zero page's address; interrupts off. The kernel sets up its own stack
    /// before using one, so rsp stays 0.
    public init(entryPoint: UInt64, bootParams: UInt64) {
        rip = entryPoint
        rsi = bootParams
    }
}

/// Special-register state at the 64-bit entry (the KVM layer makes a `kvm_sregs`
/// from it, keeping fields it does not name, such as apic_base, from KVM_GET_SREGS).
public struct BootSpecialRegisters: Sendable, Equatable {
    public var cs: Segment, ds: Segment, es: Segment, fs: Segment, gs: Segment, ss: Segment
    /// Task register: a present busy TSS (VMX needs a usable TR); not backed by a GDT entry.
    public var tr: Segment
    /// LDT register: an unused, not-present segment.
    public var ldt: Segment
    public var gdt: DescriptorTableRegister
    public var idt: DescriptorTableRegister
    public var cr0: UInt64, cr2: UInt64 = 0, cr3: UInt64, cr4: UInt64, cr8: UInt64 = 0
    public var efer: UInt64

    /// Protected mode with paging (PE|PG), ET and NE as a real CPU would have
    /// them; CR4.PAE and EFER.LME|LMA for long mode (SDM Vol. 3A §10.8.5,
    /// "Initializing IA-32e Mode"); CR3 the identity tables; flat segments
    /// from the boot GDT.
    public init(pageTableRoot: UInt64) {
        cs = GDT.code
        ds = GDT.data
        es = GDT.data
        fs = GDT.data
        gs = GDT.data
        ss = GDT.data
        tr = GDT.taskRegister
        ldt = Segment(limit: 0xFFFF, type: 0x2)  // type 2: LDT (SDM Vol. 3A Table 3-2), not present
        gdt = DescriptorTableRegister(base: Layout.gdtAddress, limit: GDT.limit)
        idt = DescriptorTableRegister(base: Layout.idtAddress, limit: 0)
        cr0 = CR0.pe | CR0.et | CR0.ne | CR0.pg
        cr3 = pageTableRoot
        cr4 = CR4.pae
        efer = EFER.lme | EFER.lma
    }
}
