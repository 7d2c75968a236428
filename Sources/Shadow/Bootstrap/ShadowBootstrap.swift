import Guest

/// Creates the shadow process S (DESIGN.md §1): borrows a user context of a
/// process P other than PID 1, maps and fills S's region in P, makes S by a
/// double fork (P gets no SIGCHLD and ends with no new child), unmaps the
/// region in P again and restores P's registers exactly.
public struct ShadowBootstrap {
    public let target: Target
    public let configuration: ShadowConfiguration

    public init(target: Target, configuration: ShadowConfiguration = ShadowConfiguration()) {
        self.target = target
        self.configuration = configuration
    }

    /// Builds S. The guest must be stopped; it is left running (S sleeping in its stub).
    public func build() throws -> (ShadowProcess, BootstrapReport) {
        let clock = ContinuousClock()
        let start = clock.now
        let stub = try ShadowStub(regionLength: configuration.regionLength, sleepNanoseconds: configuration.sleepNanoseconds)
        var loop = StopLoop(target: target)
        guard let firstVCPU = target.vcpus.first else { throw ShadowError.badArgument("the target has no vCPUs") }
        let finder = UserContextFinder(target: target)
        let entry = try finder.pageFaultEntry(vcpu: firstVCPU)
        let deadline = clock.now + configuration.userContextTimeout
        var excluded: Set<UInt64> = []
        var rejected = 0
        while true {
            let stop: UserStop
            do {
                stop = try finder.find(loop: &loop, pageFaultEntry: entry, excluded: excluded, deadline: deadline)
            } catch ShadowError.noUserContext(_, let detail) {
                throw ShadowError.noUserContext(seconds: configuration.userContextTimeout.seconds, detail: detail + ", \(rejected) candidates rejected")
            }
            let view = GuestView(memory: target, context: try stop.registers.pagingContext)
            guard let site = try? SiteSelection.syscallSite(view: view, stop: stop.registers) else {
                excluded.insert(stop.registers.root)
                rejected += 1
                continue
            }
            let injector = SyscallInjector(target: target, site: site, root: stop.registers.root, rsp: stop.registers.rsp)
            try target.insertBreakpoint(at: injector.returnAddress)
            defer { try? target.removeBreakpoint(at: injector.returnAddress) }
            let atPid = try injector.call("getpid", LinuxABI.Syscall.getpid, [], at: stop, loop: &loop, timeout: configuration.callTimeout)
            let pid = atPid.registers.result
            if pid <= 1 || configuration.acceptBorrowed?(pid) == false {
                try target.setRegisters(atPid.registers.restoringUserState(stop.registers), of: atPid.vcpu)
                excluded.insert(stop.registers.root)
                rejected += 1
                continue
            }
            let (shadow, restored) = try createShadow(in: atPid, saved: stop.registers, pid: pid, injector: injector, stub: stub, loop: &loop)
            try target.removeBreakpoint(at: injector.returnAddress)
            try target.resumeWithoutWaiting()
            return (shadow, BootstrapReport(total: clock.now - start, rejectedCandidates: rejected, stops: loop.stops,
                                            borrowedBefore: stop.registers, borrowedAfter: restored))
        }
    }

    /// The part of the bootstrap that changes the guest, in P (stopped at the
    /// return of its getpid, `saved` its registers before it was borrowed).
    private func createShadow(in current: UserStop, saved: GuestRegisters, pid: Int64, injector: SyscallInjector,
                              stub: ShadowStub, loop: inout StopLoop) throws -> (ShadowProcess, GuestRegisters) {
        let timeout = configuration.callTimeout
        let length = UInt64(stub.regionLength)
        var p = try injector.call("mmap", LinuxABI.Syscall.mmap,
                                  [0, length, LinuxABI.protRead | LinuxABI.protWrite | LinuxABI.protExec,
                                   LinuxABI.mapPrivate | LinuxABI.mapAnonymous | LinuxABI.mapPopulate, UInt64.max, 0],
                                  at: current, loop: &loop, timeout: timeout)
        let region = p.registers.rax
        let view = GuestView(memory: target, context: try p.registers.pagingContext)
        guard !LinuxABI.isError(p.registers.result), region & (X86.pageSize - 1) == 0, region >> 47 == 0 else {
            try target.setRegisters(p.registers.restoringUserState(saved), of: p.vcpu)
            throw ShadowError.injectedCallFailed(call: "mmap", errno: -p.registers.result)
        }
        let cookie = (0 ..< ShadowStub.cookieLength).map { _ in UInt8.random(in: 0 ... 255) }
        do {
            try view.write(virtual: region, stub.firstPage(cookie: cookie, cpu: configuration.dedicatedCPU,
                                                       idleCountdown: stub.idleCountdown(for: configuration.idleTimeout)))
        } catch {
            p = try injector.call("munmap", LinuxABI.Syscall.munmap, [region, length], at: p, loop: &loop, timeout: timeout)
            try target.setRegisters(p.registers.restoringUserState(saved), of: p.vcpu)
            throw ShadowError.wrongContext(expected: "a writable populated region at \(region.guestHex)", found: "\(error)")
        }
        var fork = DoubleFork(target: target, injector: injector, saved: saved, region: region, length: length,
                              pinned: configuration.dedicatedCPU != nil)
        try fork.run(from: p, loop: &loop, timeout: timeout * 3)
        guard let shadowPID = fork.shadowPID, let shadowRoot = fork.shadowRoot, let restored = fork.restored else {
            throw ShadowError.wrongContext(expected: "S created", found: "no S after the double fork")
        }
        // S is a fork of P: P's paging mode, its own root.
        let paging = PagingContext(root: shadowRoot, fiveLevel: view.context.fiveLevel,
                                   noExecuteEnabled: view.context.noExecuteEnabled)
        return (ShadowProcess(pid: shadowPID, paging: paging, regionBase: region, regionLength: stub.regionLength,
                              cookie: cookie, sleepNanoseconds: stub.sleepNanoseconds, borrowedPID: pid), restored)
    }
}
