import Shadow

/// The code a borrowed process P runs from S's region to make S, written
/// into page 0 of the region after the stub and its header (`ShadowStub`).
/// Only P's first calls (getpid, getuid, mmap) are injected from outside;
/// everything after them runs here, so fork children return into code they
/// inherited and run on whichever vCPU the guest puts them.
///
///     boot:   clone(0)                       ; P and its child C1 both go on
///             test rax, rax / jz c1 / js done
///             mov rdi, rax
///     wait:   wait4(rdi, NULL, __WCLONE, NULL)
///             cmp rax, -EINTR / je wait
///     done:   mov rbx, rax                   ; C1's pid, or -errno, for swvmm
///     MARK:   getpid                         ; swvmm takes P back here
///             ud2
///     c1:     clone(SIGCHLD)                 ; S; init reaps it once C1 is gone
///             test rax, rax / jz s
///             exit(0)                        ; C1
///     s:      setsid; rt_sigprocmask(SIG_BLOCK, all); prctl(PR_SET_NAME);
///             prctl(PR_SET_MM, ARG_START); prctl(PR_SET_MM, ARG_END);
///             sched_setaffinity(0, 128, {S's CPU})
///             lea rsp, [stack top] / jmp stub entry
///
/// Failures in S's set-up are not fatal: S only must reach its CPU, which
/// swvmm checks by seeing it trap there.
struct ForkCode: Sendable {
    /// Where the code starts in the region (after the header).
    static let offset = 0x200
    /// A second sleep beside the stub's own: the short one S takes while an
    /// inspector's calls are coming (right after the header).
    static let burstTimespecOffset = ShadowStub.headerEnd
    /// EINTR (include/uapi/asm-generic/errno-base.h).
    static let eintr: Int8 = 4

    /// The machine code, to be placed at `offset` in the region.
    let bytes: [UInt8]
    /// Region offset of the instruction after P's marker `syscall`: the rcx
    /// swvmm sees when P comes back.
    let markReturnOffset: Int

    init() {
        var a = X86Assembler(origin: ForkCode.offset)
        a.movImmediate(.eax, UInt32(LinuxABI.Syscall.clone))
        for register in [X86Assembler.Register.edi, .esi, .edx, .r10d, .r8d] { a.zero(register) }
        a.syscall()
        a.testRAX()
        a.jump(.zero, to: "c1")
        a.jump(.sign, to: "done")
        a.movRDIFromRAX()
        a.label("wait")
        a.movImmediate(.eax, UInt32(LinuxABI.Syscall.wait4))
        a.zero(.esi)
        a.movImmediate(.edx, UInt32(LinuxABI.waitClone))
        a.zero(.r10d)
        a.syscall()
        a.compareRAX(-ForkCode.eintr)
        a.jump(.zero, to: "wait")
        a.label("done")
        a.movRBXFromRAX()
        a.movImmediate(.eax, UInt32(LinuxABI.Syscall.getpid))
        a.syscall()
        let markReturn = a.offset
        a.undefined()

        a.label("c1")
        a.movImmediate(.eax, UInt32(LinuxABI.Syscall.clone))
        a.movImmediate(.edi, UInt32(LinuxABI.sigchld))
        for register in [X86Assembler.Register.esi, .edx, .r10d, .r8d] { a.zero(register) }
        a.syscall()
        a.testRAX()
        a.jump(.zero, to: "s")
        a.movImmediate(.eax, UInt32(LinuxABI.Syscall.exit))
        a.zero(.edi)
        a.syscall()
        a.undefined()

        a.label("s")
        a.movImmediate(.eax, UInt32(LinuxABI.Syscall.setsid))
        a.syscall()
        a.movImmediate(.eax, UInt32(LinuxABI.Syscall.rtSigprocmask))
        a.movImmediate(.edi, UInt32(LinuxABI.sigBlock))
        a.leaRegion(.rsi, ShadowStub.sigsetOffset)
        a.zero(.edx)
        a.movImmediate(.r10d, UInt32(LinuxABI.sigsetSize))
        a.syscall()
        a.movImmediate(.eax, UInt32(LinuxABI.Syscall.prctl))
        a.movImmediate(.edi, UInt32(LinuxABI.prSetName))
        a.leaRegion(.rsi, ShadowStub.nameOffset)
        a.syscall()
        // The command line too, or the guest's `ps aux` shows S with P's
        // arguments; start first (the new start lies below the old end).
        let nameEnd = ShadowStub.nameOffset + ShadowStub.processName.utf8.count + 1
        for (which, address) in [(LinuxABI.prSetMMArgStart, ShadowStub.nameOffset), (LinuxABI.prSetMMArgEnd, nameEnd)] {
            a.movImmediate(.eax, UInt32(LinuxABI.Syscall.prctl))
            a.movImmediate(.edi, UInt32(LinuxABI.prSetMM))
            a.movImmediate(.esi, UInt32(which))
            a.leaRegion(.rdx, address)
            a.zero(.r10d)
            a.zero(.r8d)
            a.syscall()
        }
        a.movImmediate(.eax, UInt32(LinuxABI.Syscall.schedSetaffinity))
        a.zero(.edi)
        a.movImmediate(.esi, UInt32(ShadowStub.cpusetLength))
        a.leaRegion(.rdx, ShadowStub.cpusetOffset)
        a.syscall()
        a.leaRegion(.rsp, ShadowStub.stackTop)
        a.jumpRegion(ShadowStub.entryOffset)
        bytes = a.assembled()
        markReturnOffset = markReturn
    }
}
