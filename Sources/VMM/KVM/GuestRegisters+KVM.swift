import CKVM
import Guest

/// KVM's register structs and the one register model shadow context works
/// with (GDB registers convert to the same `GuestRegisters` in GDBRemote).
extension GuestRegisters {
    /// The vCPU state in `regs` (KVM_GET_REGS), `sregs` (KVM_GET_SREGS) and
    /// `kernelGSBase` (MSR_KERNEL_GS_BASE, from KVM_GET_MSRS).
    public init(_ regs: kvm_regs, _ sregs: kvm_sregs, kernelGSBase: UInt64 = 0) {
        self.init()
        rax = regs.rax; rbx = regs.rbx; rcx = regs.rcx; rdx = regs.rdx
        rsi = regs.rsi; rdi = regs.rdi; rbp = regs.rbp; rsp = regs.rsp
        r8 = regs.r8; r9 = regs.r9; r10 = regs.r10; r11 = regs.r11
        r12 = regs.r12; r13 = regs.r13; r14 = regs.r14; r15 = regs.r15
        rip = regs.rip; rflags = regs.rflags
        cs = sregs.cs.selector; ss = sregs.ss.selector; ds = sregs.ds.selector
        es = sregs.es.selector; fs = sregs.fs.selector; gs = sregs.gs.selector
        fsBase = sregs.fs.base; gsBase = sregs.gs.base
        self.kernelGSBase = kernelGSBase
        cr0 = sregs.cr0; cr2 = sregs.cr2; cr3 = sregs.cr3; cr4 = sregs.cr4
        efer = sregs.efer
    }

    /// `regs` with the general registers, rip and rflags of this value (the
    /// fields KVM_SET_REGS writes); segments and control registers change
    /// only through KVM_SET_SREGS, which shadow context never needs.
    public func applied(to regs: kvm_regs) -> kvm_regs {
        var result = regs
        result.rax = rax; result.rbx = rbx; result.rcx = rcx; result.rdx = rdx
        result.rsi = rsi; result.rdi = rdi; result.rbp = rbp; result.rsp = rsp
        result.r8 = r8; result.r9 = r9; result.r10 = r10; result.r11 = r11
        result.r12 = r12; result.r13 = r13; result.r14 = r14; result.r15 = r15
        result.rip = rip; result.rflags = rflags
        return result
    }
}
