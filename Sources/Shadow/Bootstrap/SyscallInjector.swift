import Guest

/// Runs system calls in a borrowed process P through a `syscall` instruction
/// already in P (`site`), catching the return at `site + 2`.
///
/// Returns are recognised by P's page-table root and P's user rsp (a
/// `syscall` leaves rsp alone, other threads of P have other stacks). P may
/// come back on another vCPU. The caller keeps the breakpoint at `site + 2`.
struct SyscallInjector {
    let target: Target
    /// Address of the `syscall` instruction.
    let site: UInt64
    /// P's page-table root and user stack pointer.
    let root: UInt64
    let rsp: UInt64
    var returnAddress: UInt64 { site &+ X86.syscallLength }

    /// Runs call `number` in P (now stopped on `at`) and returns P's stop at
    /// the return, rax holding the result.
    func call(_ name: String, _ number: Int, _ arguments: [UInt64], at stop: UserStop,
              loop: inout StopLoop, timeout: Duration) throws -> UserStop {
        try target.setRegisters(try stop.registers.preparingSyscall(at: site, number: number, arguments), of: stop.vcpu)
        let deadline = ContinuousClock().now + timeout
        guard let (vcpu, registers) = try loop.run(until: deadline, during: "the injected \(name)", judge: { _, r in
            isReturn(r) ? .accept : .skip
        }) else {
            throw ShadowError.injectionTimedOut(call: name, seconds: timeout.seconds)
        }
        return UserStop(vcpu: vcpu, registers: registers)
    }

    /// True when `r` is P back from the injected call.
    func isReturn(_ r: GuestRegisters) -> Bool {
        r.rip == returnAddress && r.inUserMode && r.root == root && r.rsp == rsp
    }
}
