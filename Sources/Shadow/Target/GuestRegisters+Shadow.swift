import Guest

extension GuestRegisters {
    /// These registers with the user-visible state of `saved` put back: the
    /// general registers, rip and rflags. Segment bases, control registers and
    /// MSR_KERNEL_GS_BASE stay the current vCPU's: a process may have moved
    /// to another vCPU, whose per-CPU kernel GS base must not be overwritten
    /// with the first one's.
    func restoringUserState(_ saved: GuestRegisters) -> GuestRegisters {
        var r = self
        r.rax = saved.rax; r.rbx = saved.rbx; r.rcx = saved.rcx; r.rdx = saved.rdx
        r.rsi = saved.rsi; r.rdi = saved.rdi; r.rbp = saved.rbp; r.rsp = saved.rsp
        r.r8 = saved.r8; r.r9 = saved.r9; r.r10 = saved.r10; r.r11 = saved.r11
        r.r12 = saved.r12; r.r13 = saved.r13; r.r14 = saved.r14; r.r15 = saved.r15
        r.rip = saved.rip; r.rflags = saved.rflags
        return r
    }

    /// These registers set up to execute the `syscall` at `site`: rax = the
    /// number, arguments in rdi, rsi, rdx, r10, r8, r9 (the x86-64 Linux
    /// system call convention, arch/x86/entry/entry_64.S), missing ones 0.
    func preparingSyscall(at site: UInt64, number: Int, _ arguments: [UInt64]) throws -> GuestRegisters {
        guard arguments.count <= 6 else { throw ShadowError.badArgument("\(arguments.count) system call arguments (at most 6)") }
        guard number >= 0 else { throw ShadowError.badArgument("system call number \(number)") }
        var r = self
        r.rip = site
        r.loadSyscall(number: number, arguments)
        return r
    }

    /// Loads system call `number` and up to six arguments (missing ones 0;
    /// callers bound the count) into rax, rdi, rsi, rdx, r10, r8, r9.
    public mutating func loadSyscall(number: Int, _ arguments: [UInt64]) {
        let a = arguments + [UInt64](repeating: 0, count: max(0, 6 - arguments.count))
        rax = UInt64(number)
        rdi = a[0]; rsi = a[1]; rdx = a[2]; r10 = a[3]; r8 = a[4]; r9 = a[5]
    }

    /// True when the vCPU was in user mode (CS RPL 3).
    public var inUserMode: Bool { UInt64(cs) & 3 == X86.userRPL }

    /// rax as the kernel's signed result.
    public var result: Int64 { Int64(bitPattern: rax) }

    /// The page-table root: cr3's address bits (PCID and flag bits dropped).
    ///
    /// Shadow context compares roots only for stops in user mode. A KPTI
    /// kernel runs user mode on the process's user root (kernel root ^ 0x1000)
    /// every time, so those comparisons need no KPTI case; treating both halves
    /// as one (`sameAddressSpace(_:_:allowKPTI:)`) would be wrong on guests
    /// without KPTI, where the neighbouring page can be another process's PGD.
    public var root: UInt64 { PagingContext(root: cr3, fiveLevel: false).root }

    /// The paging context of this vCPU (its cr3, cr4, efer).
    public var pagingContext: PagingContext {
        get throws { try PagingContext(cr3: cr3, cr4: cr4, efer: efer) }
    }
}
