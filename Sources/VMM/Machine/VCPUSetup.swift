import CKVM

/// Puts a freshly created vCPU into the state the Linux 64-bit boot protocol
/// expects (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol"): long
/// mode, identity paging, flat segments, %rsi = zero page. Only the bootstrap
/// processor gets that state; the others stay in KVM's wait-for-SIPI reset
/// state, and the kernel starts them through the in-kernel LAPIC.
enum VCPUSetup {
    static func configure(_ vcpu: VirtualCPU, index: Int, plan: BootPlan, supportedCPUID: [kvm_cpuid_entry2],
                          cpuCount: Int, clearCX16: Bool) throws {
        let normalized = CPUIDNormalizer.normalize(supportedCPUID.map(CPUIDEntry.init), vcpuIndex: index,
                                                   cpuCount: cpuCount, clearCX16: clearCX16)
        try vcpu.setCPUID(normalized.map(kvm_cpuid_entry2.init))
        try vcpu.setModelSpecificRegisters(plan.msrs)
        try configureLocalInterruptPins(vcpu)
        guard index == 0 else { return }
        try vcpu.setFloatingPointState(initialFloatingPointState())
        try applySpecialRegisters(plan.specialRegisters, to: vcpu)
        try vcpu.setRegisters(kvm_regs(plan.registers))
    }

    /// Applies long-mode control and segment state on top of what KVM has.
    static func applySpecialRegisters(_ state: BootSpecialRegisters, to vcpu: VirtualCPU) throws {
        var sregs = try vcpu.specialRegisters()
        sregs.cs = kvm_segment(state.cs)
        sregs.ds = kvm_segment(state.ds)
        sregs.es = kvm_segment(state.es)
        sregs.fs = kvm_segment(state.fs)
        sregs.gs = kvm_segment(state.gs)
        sregs.ss = kvm_segment(state.ss)
        sregs.tr = kvm_segment(state.tr)
        sregs.ldt = kvm_segment(state.ldt)
        sregs.gdt.base = state.gdt.base
        sregs.gdt.limit = state.gdt.limit
        sregs.idt.base = state.idt.base
        sregs.idt.limit = state.idt.limit
        sregs.cr0 = state.cr0
        sregs.cr2 = state.cr2
        sregs.cr3 = state.cr3
        sregs.cr4 = state.cr4
        sregs.cr8 = state.cr8
        sregs.efer = state.efer
        try vcpu.setSpecialRegisters(sregs)
    }

    /// x87 control word after FNINIT (Intel SDM Vol. 1 §8.1.5: 0x37F) and the
    /// MXCSR reset value (Vol. 1 §10.2.3: 0x1F80, all SIMD exceptions masked).
    static let x87ControlWord: UInt16 = 0x37F
    static let mxcsrReset: UInt32 = 0x1F80

    static func initialFloatingPointState() -> kvm_fpu {
        var fpu = kvm_fpu()
        fpu.fcw = x87ControlWord
        fpu.mxcsr = mxcsrReset
        return fpu
    }

    /// Local APIC register offsets and delivery modes (Intel SDM Vol. 3A
    /// §11.5.1, Figure 11-8 "Local Vector Table").
    static let lvtLINT0Offset = 0x350
    static let lvtLINT1Offset = 0x360
    static let deliveryModeMask: UInt32 = 0x700
    static let deliveryModeExtINT: UInt32 = 0x700
    static let deliveryModeNMI: UInt32 = 0x400

    /// LINT0 = ExtINT (the legacy PIC's output), LINT1 = NMI: the wiring the
    /// MP table's local-interrupt entries describe and that Linux expects of a PC.
    static func configureLocalInterruptPins(_ vcpu: VirtualCPU) throws {
        var lapic = try vcpu.localAPIC()
        withUnsafeMutableBytes(of: &lapic.regs) { registers in
            for (offset, mode) in [(lvtLINT0Offset, deliveryModeExtINT), (lvtLINT1Offset, deliveryModeNMI)] {
                let value = registers.load(fromByteOffset: offset, as: UInt32.self)
                registers.storeBytes(of: (value & ~deliveryModeMask) | mode, toByteOffset: offset, as: UInt32.self)
            }
        }
        try vcpu.setLocalAPIC(lapic)
    }
}

extension kvm_segment {
    /// KVM's view of a segment register from the plain `Segment`.
    public init(_ segment: Segment) {
        self.init()
        base = segment.base
        limit = segment.byteLimit
        selector = segment.selector
        type = segment.type
        present = segment.present ? 1 : 0
        dpl = segment.dpl
        db = segment.db ? 1 : 0
        s = segment.s ? 1 : 0
        l = segment.l ? 1 : 0
        g = segment.g ? 1 : 0
        avl = segment.avl ? 1 : 0
        unusable = segment.present ? 0 : 1
    }
}

extension kvm_regs {
    init(_ registers: BootRegisters) {
        self.init()
        rax = registers.rax; rbx = registers.rbx; rcx = registers.rcx; rdx = registers.rdx
        rsi = registers.rsi; rdi = registers.rdi; rsp = registers.rsp; rbp = registers.rbp
        r8 = registers.r8; r9 = registers.r9; r10 = registers.r10; r11 = registers.r11
        r12 = registers.r12; r13 = registers.r13; r14 = registers.r14; r15 = registers.r15
        rip = registers.rip
        rflags = registers.rflags
    }
}

extension CPUIDEntry {
    init(_ entry: kvm_cpuid_entry2) {
        self.init(function: entry.function, index: entry.index, flags: entry.flags,
                  eax: entry.eax, ebx: entry.ebx, ecx: entry.ecx, edx: entry.edx)
    }
}

extension kvm_cpuid_entry2 {
    init(_ entry: CPUIDEntry) {
        self.init()
        function = entry.function; index = entry.index; flags = entry.flags
        eax = entry.eax; ebx = entry.ebx; ecx = entry.ecx; edx = entry.edx
    }
}
