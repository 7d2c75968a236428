import Guest

/// The injected double fork that makes S, as one event loop over the returns
/// at the borrowed `syscall` site (P, its child C1 and S all share P's stack
/// layout, so each comes back there; they are told apart by page-table root
/// and rax):
///
/// - P: `clone(0)` makes C1 with exit signal 0 (P gets no SIGCHLD); then
///   `wait4(C1, NULL, __WCLONE, NULL)` reaps it; then `munmap(region)`;
///   then P's registers are restored exactly.
/// - C1 (new root, rax 0): `clone(SIGCHLD)` makes S (init reaps S when it
///   dies, as S is reparented), then `exit(0)`.
/// - S (another new root, rax 0): `setsid`, `rt_sigprocmask(SIG_BLOCK, all)`,
///   `prctl(PR_SET_NAME, "swvmm-shadow")`, its command line the same
///   (`prctl(PR_SET_MM, PR_SET_MM_ARG_START/END)`, when it may),
///   optionally `sched_setaffinity`, then into the stub with rsp in the region.
struct DoubleFork {
    let target: Target
    let injector: SyscallInjector
    let saved: GuestRegisters
    let region: UInt64
    let length: UInt64
    let pinned: Bool

    private(set) var shadowPID: Int64?
    private(set) var shadowRoot: UInt64?
    /// P's registers read back after the restore.
    private(set) var restored: GuestRegisters?
    private var childPID: Int64?
    private var childRoot: UInt64?
    private enum PStage { case cloning, waiting, unmapping, done }
    private enum SStage { case setsid, sigmask, name, argumentsStart, argumentsEnd, affinity, running }
    private var pStage = PStage.cloning
    private var sStage: SStage?
    private var interruptedWaits = 0

    /// EINTR (include/uapi/asm-generic/errno-base.h): P's wait4 met a signal.
    static let eintr: Int64 = 4
    /// Bound on wait4 restarts after EINTR.
    static let maximumRestarts = 100

    init(target: Target, injector: SyscallInjector, saved: GuestRegisters, region: UInt64, length: UInt64, pinned: Bool) {
        self.target = target; self.injector = injector; self.saved = saved
        self.region = region; self.length = length; self.pinned = pinned
    }

    /// Starts with P stopped at `p` and returns when P is restored and S runs its stub.
    mutating func run(from p: UserStop, loop: inout StopLoop, timeout: Duration) throws {
        try inject("clone", LinuxABI.Syscall.clone, [0, 0, 0, 0, 0], on: p.vcpu, p.registers)
        let deadline = ContinuousClock().now + timeout
        var this = self
        let result = try loop.run(until: deadline, during: "the double fork") { vcpu, r in
            try this.handle(vcpu, r)
        }
        self = this
        guard result != nil else {
            throw ShadowError.injectionTimedOut(call: "double fork (P \(pStage), S \(sStage.map { "\($0)" } ?? "not seen"))", seconds: timeout.seconds)
        }
    }

    private var finished: Bool { pStage == .done && sStage == .running }

    private func inject(_ name: String, _ number: Int, _ arguments: [UInt64], on vcpu: VCPUID, _ r: GuestRegisters) throws {
        try target.setRegisters(try r.preparingSyscall(at: injector.site, number: number, arguments), of: vcpu)
    }

    /// One return at the site: move that process to its next step.
    private mutating func handle(_ vcpu: VCPUID, _ r: GuestRegisters) throws -> StopLoop.Verdict {
        guard r.rip == injector.returnAddress, r.inUserMode, r.rsp == injector.rsp else { return .skip }
        let rax = r.result
        if r.root == injector.root {
            try handleP(vcpu, r, rax)
        } else if r.root == childRoot {
            guard shadowPID == nil else { return .skip }
            // C1 back from clone(SIGCHLD): rax is S's pid. C1 exits either way.
            if LinuxABI.isError(rax) {
                try inject("exit", LinuxABI.Syscall.exit, [1], on: vcpu, r)
                throw ShadowError.injectedCallFailed(call: "clone (second fork, in C1)", errno: -rax)
            }
            shadowPID = rax
            try inject("exit", LinuxABI.Syscall.exit, [0], on: vcpu, r)
        } else if r.root == shadowRoot {
            try handleS(vcpu, r, rax)
        } else if rax == 0, childRoot == nil {
            // The first child back from P's clone(0): C1.
            childRoot = r.root
            try inject("clone", LinuxABI.Syscall.clone, [LinuxABI.sigchld, 0, 0, 0, 0], on: vcpu, r)
        } else if rax == 0, childRoot != nil, shadowRoot == nil {
            // The grandchild: S.
            shadowRoot = r.root
            sStage = .setsid
            try inject("setsid", LinuxABI.Syscall.setsid, [], on: vcpu, r)
        } else {
            return .skip
        }
        return finished ? .accept : .handled
    }

    private mutating func handleP(_ vcpu: VCPUID, _ r: GuestRegisters, _ rax: Int64) throws {
        switch pStage {
        case .cloning:
            guard !LinuxABI.isError(rax), rax > 0 else {
                try restoreP(vcpu, r)
                throw ShadowError.injectedCallFailed(call: "clone (first fork, in P)", errno: -rax)
            }
            childPID = rax
            pStage = .waiting
            try inject("wait4", LinuxABI.Syscall.wait4, [UInt64(bitPattern: rax), 0, LinuxABI.waitClone, 0], on: vcpu, r)
        case .waiting:
            if rax == -DoubleFork.eintr, interruptedWaits < DoubleFork.maximumRestarts, let child = childPID {
                interruptedWaits += 1
                try inject("wait4", LinuxABI.Syscall.wait4, [UInt64(bitPattern: child), 0, LinuxABI.waitClone, 0], on: vcpu, r)
                return
            }
            guard rax == childPID else {
                try restoreP(vcpu, r)
                throw ShadowError.injectedCallFailed(call: "wait4 for C1 (returned \(rax))", errno: LinuxABI.isError(rax) ? -rax : 0)
            }
            pStage = .unmapping
            try inject("munmap", LinuxABI.Syscall.munmap, [region, length], on: vcpu, r)
        case .unmapping:
            try restoreP(vcpu, r)
            pStage = .done
            if LinuxABI.isError(rax) { throw ShadowError.injectedCallFailed(call: "munmap in P", errno: -rax) }
        case .done:
            break
        }
    }

    private mutating func restoreP(_ vcpu: VCPUID, _ r: GuestRegisters) throws {
        try target.setRegisters(r.restoringUserState(saved), of: vcpu)
        restored = try target.registers(of: vcpu)
    }

    private mutating func handleS(_ vcpu: VCPUID, _ r: GuestRegisters, _ rax: Int64) throws {
        switch sStage {
        case .setsid:
            guard !LinuxABI.isError(rax) else { throw ShadowError.injectedCallFailed(call: "setsid in S", errno: -rax) }
            sStage = .sigmask
            try inject("rt_sigprocmask", LinuxABI.Syscall.rtSigprocmask,
                       [LinuxABI.sigBlock, region &+ UInt64(ShadowStub.sigsetOffset), 0, LinuxABI.sigsetSize], on: vcpu, r)
        case .sigmask:
            guard rax == 0 else { throw ShadowError.injectedCallFailed(call: "rt_sigprocmask in S", errno: -rax) }
            sStage = .name
            try inject("prctl", LinuxABI.Syscall.prctl,
                       [LinuxABI.prSetName, region &+ UInt64(ShadowStub.nameOffset)], on: vcpu, r)
        case .name:
            guard rax == 0 else { throw ShadowError.injectedCallFailed(call: "prctl(PR_SET_NAME) in S", errno: -rax) }
            // Its command line too, or the guest's `ps aux` shows S with P's
            // arguments. Start first: the new start (in the region) lies below
            // the old end (on the stack), as the kernel requires.
            sStage = .argumentsStart
            try inject("prctl", LinuxABI.Syscall.prctl,
                       [LinuxABI.prSetMM, LinuxABI.prSetMMArgStart, region &+ UInt64(ShadowStub.nameOffset), 0, 0], on: vcpu, r)
        case .argumentsStart:
            // Without CAP_SYS_RESOURCE (a borrowed process that is not root) S
            // keeps P's command line: its name still says what it is.
            if rax == 0 {
                sStage = .argumentsEnd
                let end = region &+ UInt64(ShadowStub.nameOffset + ShadowStub.processName.utf8.count + 1)
                try inject("prctl", LinuxABI.Syscall.prctl, [LinuxABI.prSetMM, LinuxABI.prSetMMArgEnd, end, 0, 0], on: vcpu, r)
            } else {
                try afterName(vcpu, r)
            }
        case .argumentsEnd:
            try afterName(vcpu, r)
        case .affinity:
            guard rax == 0 else { throw ShadowError.injectedCallFailed(call: "sched_setaffinity in S", errno: -rax) }
            try enterStub(vcpu, r)
        case .running, nil:
            break
        }
    }

    /// S's last set-up step: its CPU when pinned, then the stub.
    private mutating func afterName(_ vcpu: VCPUID, _ r: GuestRegisters) throws {
        if pinned {
            sStage = .affinity
            try inject("sched_setaffinity", LinuxABI.Syscall.schedSetaffinity,
                       [0, UInt64(ShadowStub.cpusetLength), region &+ UInt64(ShadowStub.cpusetOffset)], on: vcpu, r)
        } else {
            try enterStub(vcpu, r)
        }
    }

    private mutating func enterStub(_ vcpu: VCPUID, _ r: GuestRegisters) throws {
        var s = r
        s.rip = region &+ UInt64(ShadowStub.entryOffset)
        s.rsp = region &+ UInt64(ShadowStub.stackTop)
        try target.setRegisters(s, of: vcpu)
        sStage = .running
    }
}
