import CKVM
import VMM
import Guest

/// A VM that runs a few bytes of 64-bit code: no kernel, no firmware, one
/// identity-mapped 2 MiB page, flat segments, each vCPU put straight into long
/// mode at CPL 0 or CPL 3. Used by the KVM micro-guest tests and by
/// `swvmm bench` to measure exits in isolation.
///
/// On hosts without VT-x/AMD-V, KVM runs CPL 3 natively and emulates CPL 0
/// (shared/PLATFORM.md); offering both levels makes that difference visible.
public final class MicroVM {
    /// Guest-physical layout: page tables, code, stacks (all inside the one 2 MiB page).
    public static let pml4: UInt64 = 0x1000, pdpt: UInt64 = 0x2000, pageDirectory: UInt64 = 0x3000
    public static let codeAddress: UInt64 = 0x10000
    public static let stackTop: UInt64 = 0x80000
    public static let memorySize: UInt64 = 2 << 20

    public let system: KVMSystem
    public let machine: VirtualMachine
    public let memory: GuestMemory
    public private(set) var vcpus: [VirtualCPU] = []
    /// What KVM supports, given to every vCPU as its CPUID: hardware KVM refuses
    /// long mode in KVM_SET_SREGS unless the guest's CPUID has LM (Intel SDM
    /// CPUID.80000001H:EDX bit 29), and SYSCALL in EFER unless it has SYSCALL.
    private let supportedCPUID: [kvm_cpuid_entry2]

    public init() throws {
        system = try KVMSystem()
        supportedCPUID = try system.supportedCPUID()
        machine = try system.createVirtualMachine()
        memory = try GuestMemory(size: MicroVM.memorySize)
        try machine.mapMemory(memory)
        let table = X86Paging.presentBit | X86Paging.writableBit | X86Paging.userBit
        try memory.writeInteger(physical: MicroVM.pml4, MicroVM.pdpt | table)
        try memory.writeInteger(physical: MicroVM.pdpt, MicroVM.pageDirectory | table)
        try memory.writeInteger(physical: MicroVM.pageDirectory, 0 | table | X86Paging.pageSizeBit)
    }

    /// Places `code` at `codeAddress + offset`.
    public func load(_ code: [UInt8], offset: UInt64 = 0) throws {
        try memory.writeBytes(physical: MicroVM.codeAddress + offset, code)
    }

    /// Creates a vCPU in 64-bit mode at privilege level `cpl` (0 or 3), starting
    /// at `codeAddress + entryOffset`, each with its own stack page; `configure`
    /// adjusts the general registers last.
    @discardableResult
    public func addVCPU(cpl: UInt8, entryOffset: UInt64 = 0, configure: (inout kvm_regs) -> Void = { _ in }) throws -> VirtualCPU {
        let vcpu = try machine.createVirtualCPU(id: vcpus.count)
        try vcpu.setCPUID(supportedCPUID)
        let privilege = cpl == 0 ? UInt8(0) : 3
        // Selectors: index 1/2 for CPL 0 code/data, 3/4 for CPL 3 (RPL 3); the GDT itself is never read.
        let code = Segment(limit: 0xFFFFF, selector: privilege == 0 ? 0x08 : 0x1B, type: 0xB, present: true,
                           dpl: privilege, s: true, l: true, g: true)
        let data = Segment(limit: 0xFFFFF, selector: privilege == 0 ? 0x10 : 0x23, type: 0x3, present: true,
                           dpl: privilege, db: true, s: true, g: true)
        var sregs = try vcpu.specialRegisters()
        sregs.cs = kvm_segment(code)
        for keyPath in [\kvm_sregs.ds, \.es, \.fs, \.gs, \.ss] { sregs[keyPath: keyPath] = kvm_segment(data) }
        sregs.cr3 = MicroVM.pml4
        sregs.cr4 = CR4.pae
        sregs.cr0 = CR0.pe | CR0.pg | CR0.et | CR0.ne
        sregs.efer = EFER.lme | EFER.lma
        try vcpu.setSpecialRegisters(sregs)
        var regs = kvm_regs()
        regs.rip = MicroVM.codeAddress + entryOffset
        regs.rsp = MicroVM.stackTop - UInt64(vcpus.count) * Layout.pageSize
        regs.rflags = BootRegisters.rflagsReserved | MicroVM.ioPrivilegeLevel3
        configure(&regs)
        try vcpu.setRegisters(regs)
        vcpus.append(vcpu)
        return vcpu
    }

    /// RFLAGS.IOPL = 3 (bits 13:12, Intel SDM Vol. 1 §3.4.3.3), so CPL 3 code may use in/out.
    static let ioPrivilegeLevel3: UInt64 = 3 << 12
}
