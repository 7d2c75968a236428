import Guest

/// A process caught in user mode at an instruction boundary: the vCPU it is
/// on and its registers there.
struct UserStop {
    var vcpu: VCPUID
    var registers: GuestRegisters
}

/// Finds a user-mode context without kernel symbols (PLATFORM.md, "Finding a
/// user context"): the IDT's page-fault gate gives the #PF entry; a
/// breakpoint there sees faults, and one from user mode carries the user rip
/// in its hardware frame; a breakpoint at that rip then stops a process in
/// user mode at an instruction boundary.
struct UserContextFinder {
    let target: Target
    /// How long one candidate user rip is waited for before a new fault is taken.
    static let ripWait: Duration = .seconds(5)

    /// The hardware frame at the first instruction of the #PF entry, in
    /// qwords from rsp: error code, rip, cs, rflags, rsp, ss (Intel SDM Vol.
    /// 3A §6.14.2, figure 6-9 "IA-32e Mode Stack Usage After Privilege Level Change").
    enum Frame {
        static let rip: UInt64 = 8, cs: UInt64 = 16, ss: UInt64 = 40
        static let size = 48
    }

    /// The #PF handler's address, read from vCPU `vcpu`'s IDT through its
    /// kernel paging context (the IDT is mapped in every address space).
    func pageFaultEntry(vcpu: VCPUID) throws -> UInt64 {
        let registers = try target.registers(of: vcpu)
        let view = GuestView(memory: target, context: try registers.pagingContext)
        let idtr = try target.idtRegister(of: vcpu)
        return try IDTGate.handler(vector: IDTGate.pageFaultVector, idtr: idtr, view: view)
    }

    /// Stops some process in user mode. Processes whose root is in
    /// `excluded` are passed over. All breakpoints it sets are removed again.
    func find(loop: inout StopLoop, pageFaultEntry: UInt64, excluded: Set<UInt64>,
              deadline: ContinuousClock.Instant) throws -> UserStop {
        let clock = ContinuousClock()
        var faults = 0
        while clock.now < deadline {
            // 1. A page fault from user mode.
            var userRIP: UInt64 = 0
            try target.insertBreakpoint(at: pageFaultEntry)
            let fault: (VCPUID, GuestRegisters)?
            do {
                defer { try? target.removeBreakpoint(at: pageFaultEntry) }
                fault = try loop.run(until: deadline, during: "the wait for a user page fault") { _, registers in
                    guard registers.rip == pageFaultEntry, !excluded.contains(registers.root),
                          let rip = try? userFrameRIP(registers) else { return .skip }
                    userRIP = rip
                    return .accept
                }
            }
            guard fault != nil else { break }
            faults += 1
            // 2. That process (or another one at the same rip) back in user mode.
            try target.insertBreakpoint(at: userRIP)
            defer { try? target.removeBreakpoint(at: userRIP) }
            let ripDeadline = min(deadline, clock.now + UserContextFinder.ripWait)
            if let (vcpu, registers) = try loop.run(until: ripDeadline, during: "the wait at a user rip", judge: { _, registers in
                registers.rip == userRIP && registers.inUserMode && !excluded.contains(registers.root) ? .accept : .skip
            }) {
                return UserStop(vcpu: vcpu, registers: registers)
            }
        }
        throw ShadowError.noUserContext(seconds: 0, detail: "\(faults) user page faults seen, none came back to its rip in time")
    }

    /// The user rip of the fault whose #PF entry `registers` stopped at, or
    /// nil when the fault came from kernel mode. Every frame value is checked.
    private func userFrameRIP(_ registers: GuestRegisters) throws -> UInt64? {
        let view = GuestView(memory: target, context: try registers.pagingContext)
        let frame = try view.read(virtual: registers.rsp, count: Frame.size)
        func qword(_ offset: UInt64) -> UInt64 {
            frame[Int(offset) ..< Int(offset) + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        let cs = qword(Frame.cs), ss = qword(Frame.ss), rip = qword(Frame.rip)
        guard cs & 3 == X86.userRPL, ss & 3 == X86.userRPL, cs <= 0xFFFF, ss <= 0xFFFF,
              view.context.isCanonical(rip), rip >> 63 == 0, rip != 0 else { return nil }
        return rip
    }
}
