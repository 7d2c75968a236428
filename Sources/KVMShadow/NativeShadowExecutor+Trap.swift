import Dispatch
import Guest
import Shadow

/// The dedicated vCPU's side of `NativeShadowExecutor`: S's trapped system
/// calls and the port write that ends its batches, each seen on that vCPU's
/// thread while it is out of KVM_RUN, so each returns within about a millisecond.
extension NativeShadowExecutor {
    /// What one trap of S's was, against the request in flight.
    private enum TrapKind {
        /// S at a syscall of its own; `finished`: the call in flight returned (rbx).
        case fresh(finished: Bool)
        /// The kernel backed S up to its `syscall` (a stop signal met the call).
        case restart
        /// A call of the batch in flight (the trap was armed again mid-batch).
        case batchCall
        /// A syscall that is not the batch's while a batch is in flight.
        case offTheBatch
    }

    /// One trapped system call on the dedicated vCPU.
    func intercept(_ r: inout GuestRegisters, vcpu: Int) -> SyscallTrap.AfterCall {
        guard r.root == root else { return .stayArmed }
        let now = ContinuousClock().now
        let kind: TrapKind = state.withLock { s in
            s.statistics.shadowTraps += 1
            s.lastSeen = now
            guard let request = s.inFlight else { return .fresh(finished: false) }
            switch request.work {
            case let .call(number, arguments):
                if Self.isRestart(r, number: number, arguments: arguments) {
                    s.statistics.restarts += 1
                    return .restart
                }
                s.completed = (request.sequence, Int64(bitPattern: r.rbx))
                s.inFlight = nil
                return .fresh(finished: true)
            case .batch:
                // The vCPU's watcher may arm the trap again while a long
                // batch runs: its calls then exit one by one; let them in.
                return r.rcx == s.shadow.batchCallReturnAddress ? .batchCall : .offTheBatch
            }
        }
        var finished = false
        switch kind {
        case .restart, .batchCall:
            return .stayArmed
        case .offTheBatch:
            state.withLock { s in
                if s.failure == nil { s.failure = .wrongContext(expected: "S's batch to end at its port write", found: "a system call returning to \(r.rcx.guestHex)") }
            }
            endTamperedShadow(&r)
            return .stayArmed
        case .fresh(let callReturned):
            finished = callReturned
        }
        let leaving = state.withLock { s -> Bool in
            guard s.ending else { return false }
            s.ending = false
            s.left = true
            return true
        }
        if leaving {
            endShadow(&r, status: 0)
            return .stayArmed
        }
        guard state.withLock({ $0.failure == nil }), isAtLoop(r), isIntact() else {
            endTamperedShadow(&r)
            return .stayArmed
        }
        if finished { resultReady.signal() }
        var next = takePending()
        if next == nil, state.withLock({ $0.burst }) {
            if requestReady.wait(timeout: .now() + Self.holdLimit) == .success { next = takePending() }
            if next == nil { state.withLock { $0.statistics.expiredHolds += 1 } }
        }
        if let request = next, !applyPendingWrites() {
            // A page of the region is being moved: the call waits for S's next trap.
            state.withLock { s in
                s.inFlight = nil
                s.pending = request
                s.statistics.deferredCalls += 1
            }
            next = nil
        }
        let shadow = state.withLock { $0.shadow }
        switch next?.work {
        case let .call(number, arguments):
            r.loadSyscall(number: number, arguments)
        case let .batch(table, count):
            // S's sleep becomes a getpid that returns into the batch runner;
            // the trap is off until the runner's `out` at PORT.
            r.loadSyscall(number: LinuxABI.Syscall.getpid, [])
            r.rcx = shadow.batchAddress
            r.rbx = table
            r.r12 = UInt64(count)
            r.r13 = shadow.portExitAddress
            r.r14 = UInt64(trapPort)
            return .disarm
        case nil:
            if state.withLock({ $0.burst }) { r.rdi = shadow.regionBase + UInt64(ForkCode.burstTimespecOffset) }
        }
        return .stayArmed
    }

    /// A write to the trap's port from user mode on the dedicated vCPU:
    /// S's batch runner at PORT, its batch done (the results are in its
    /// table). Anything else is not S's to say.
    func portWritten(_ r: GuestRegisters, vcpu: Int) -> Bool {
        guard r.root == root, r.inUserMode else { return false }
        let now = ContinuousClock().now
        let ended: Bool = state.withLock { s in
            guard r.rip == s.shadow.portOutAddress, let request = s.inFlight, case .batch = request.work else { return false }
            s.statistics.shadowTraps += 1
            s.statistics.batchesInOneExit += 1
            s.lastSeen = now
            s.completed = (request.sequence, 0)
            s.inFlight = nil
            return true
        }
        if ended { resultReady.signal() }
        return ended
    }

    private func takePending() -> Request? {
        state.withLock { s in
            guard let request = s.pending else { return nil }
            s.pending = nil
            s.inFlight = request
            return request
        }
    }

    /// The kernel restarts a call by moving the return rip back onto the
    /// `syscall` with rax = the call's number again; the arguments are unchanged.
    private static func isRestart(_ r: GuestRegisters, number: Int, arguments a: [UInt64]) -> Bool {
        r.rax == UInt64(number) && r.rdi == a[0] && r.rsi == a[1] && r.rdx == a[2]
            && r.r10 == a[3] && r.r8 == a[4] && r.r9 == a[5]
    }

    /// S at its loop as the stub leaves it: about to sleep on its own timespec, on its own stack.
    private func isAtLoop(_ r: GuestRegisters) -> Bool {
        let base = state.withLock { $0.shadow.regionBase }
        return r.rcx == base + UInt64(ShadowStub.trapOffset) && r.rax == UInt64(LinuxABI.Syscall.nanosleep)
            && r.rdi == base + UInt64(ShadowStub.timespecOffset) && r.rsi == 0 && r.rsp == base + UInt64(ShadowStub.stackTop)
    }

    /// Page 0 (stub, header, fork code) as written.
    private func isIntact() -> Bool {
        guard let view = try? view() else { return false }
        return region.isIntact(at: shadow.regionBase, in: view)
    }

    /// S is no longer what swvmm made: fail the executor and end S (its call becomes exit_group(1)).
    private func endTamperedShadow(_ r: inout GuestRegisters) {
        state.withLock { s in
            if s.failure == nil { s.failure = .stubModified(pid: s.shadow.pid, address: s.shadow.regionBase) }
            s.pending = nil
            s.inFlight = nil
        }
        endShadow(&r, status: 1)
    }

    /// S's call becomes exit_group(`status`): it leaves the guest from its trap.
    private func endShadow(_ r: inout GuestRegisters, status: UInt64) {
        resultReady.signal()
        r.rax = UInt64(LinuxABI.Syscall.exitGroup)
        r.rdi = status
    }
}
