import Dispatch
import Guest
import Shadow
import Synchronization
import VMM

/// Makes S on swvmm's own machine through the syscall-entry trap, with no
/// guest debugging: while every vCPU is armed, the first acceptable caller P
/// is held at its syscall entry, a few calls are injected into it (its own
/// `syscall` instruction re-executes each one and traps again with the
/// result), its region is filled, and P runs `ForkCode` from there; at its
/// marker P gets its region unmapped and is put back exactly, its own call
/// forwarded. S then pins itself to the dedicated vCPU and is recognised at
/// its first trap there.
///
/// Every step is decided in `intercept(_:vcpu:)`, on the vCPU thread that
/// trapped, within microseconds; `NativeShadow` drives it from outside.
final class NativeBootstrap: Sendable {
    /// The borrowed process: its syscall entry as first trapped.
    struct Borrowed: Sendable {
        let saved: GuestRegisters
        var pid: Int64 = 0
        var region: UInt64 = 0
        /// C1's pid (wait4's result in P) or -errno from the fork code.
        var forkOutcome: Int64 = 0
        var root: UInt64 { saved.root }
        /// Whether `r` is P back at its own `syscall` after an injected call.
        func isBack(_ r: GuestRegisters) -> Bool { r.root == root && r.rsp == saved.rsp && r.rcx == saved.rcx }
    }

    enum Phase: Sendable {
        /// Waiting for every vCPU to be armed.
        case arming
        /// Waiting for an acceptable caller.
        case choosing
        case askingPID(Borrowed)
        case askingUID(Borrowed)
        case mapping(Borrowed)
        case forking(Borrowed)
        case unmapping(Borrowed, failure: String?)
        /// P is back; S is on its way to its CPU.
        case waitingForShadow(Borrowed)
        case done(ShadowProcess)
        case failed(String)
    }

    /// The user-half bound of x86-64 canonical addresses.
    static let kernelHalf: UInt64 = 1 << 63
    /// `syscall` (Intel SDM Vol. 2B: 0F 05).
    static let syscallInstruction: [UInt8] = [0x0F, 0x05]

    let region: NativeRegion
    let stub: ShadowStub
    let cookie: [UInt8]
    let shadowCPU: Int
    private let memory: GuestMemory
    private let state = Mutex<(phase: Phase, excluded: Set<UInt64>, rejected: Int)>((.arming, [], 0))
    /// Signalled whenever the phase moves on (the driver waits on it).
    let progress = DispatchSemaphore(value: 0)

    init(memory: GuestMemory, configuration: ShadowConfiguration, shadowCPU: Int, burstSleepNanoseconds: UInt64) throws {
        self.memory = memory
        self.shadowCPU = shadowCPU
        stub = try ShadowStub(regionLength: configuration.regionLength, sleepNanoseconds: configuration.sleepNanoseconds)
        cookie = (0 ..< ShadowStub.cookieLength).map { _ in UInt8.random(in: 0 ... 255) }
        region = NativeRegion(stub: stub, cookie: cookie, cpu: shadowCPU, burstSleepNanoseconds: burstSleepNanoseconds)
    }

    var phase: Phase { state.withLock { $0.phase } }
    /// Candidates turned down (PID 1, not root, no `syscall` to re-execute).
    var rejected: Int { state.withLock { $0.rejected } }

    /// Every vCPU is armed: the next acceptable caller is taken.
    func startChoosing() { move { if case .arming = $0 { $0 = .choosing } } }

    /// Gives up before a process was borrowed; false when one already is
    /// (then P must be seen back first, and the driver waits on).
    func abandonIfNotBorrowed(_ reason: String) -> Bool {
        state.withLock { s in
            switch s.phase {
            case .arming, .choosing:
                s.phase = .failed(reason)
                return true
            case .failed, .done, .waitingForShadow:
                return true
            default:
                return false
            }
        }
    }

    /// Gives up waiting for S at its CPU.
    func abandon(_ reason: String) { move { phase in if case .waitingForShadow = phase { phase = .failed(reason) } } }

    private func move(_ change: (inout Phase) -> Void) {
        state.withLock { change(&$0.phase) }
        progress.signal()
    }

    // MARK: the trap's side (a vCPU thread)

    /// One trapped system call on any vCPU, while the bootstrap runs.
    func intercept(_ r: inout GuestRegisters, vcpu: Int) {
        var changed = false
        state.withLock { s in
            changed = step(&s.phase, &s.excluded, &s.rejected, &r, vcpu: vcpu)
        }
        if changed { progress.signal() }
    }

    /// The state machine; returns whether the phase changed.
    private func step(_ phase: inout Phase, _ excluded: inout Set<UInt64>, _ rejected: inout Int,
                      _ r: inout GuestRegisters, vcpu: Int) -> Bool {
        switch phase {
        case .choosing:
            guard vcpu != shadowCPU, !excluded.contains(r.root), r.rcx < Self.kernelHalf, r.rcx >= 2,
                  let view = userView(r), (try? view.read(virtual: r.rcx - 2, count: 2)) == Self.syscallInstruction else {
                return false
            }
            let p = Borrowed(saved: r)
            inject(&r, LinuxABI.Syscall.getpid, [], returningTo: p.saved.rcx - 2)
            phase = .askingPID(p)
        case var .askingPID(p) where p.isBack(r):
            p.pid = Int64(bitPattern: r.rax)
            guard p.pid > 1 else { return reject(p, &r, &phase, &excluded, &rejected) }
            inject(&r, LinuxABI.Syscall.getuid, [], returningTo: p.saved.rcx - 2)
            phase = .askingUID(p)
        case let .askingUID(p) where p.isBack(r):
            guard r.rax == 0 else { return reject(p, &r, &phase, &excluded, &rejected) }
            inject(&r, LinuxABI.Syscall.mmap,
                   [0, UInt64(stub.regionLength), LinuxABI.protRead | LinuxABI.protWrite | LinuxABI.protExec,
                    LinuxABI.mapPrivate | LinuxABI.mapAnonymous | LinuxABI.mapPopulate, UInt64.max, 0],
                   returningTo: p.saved.rcx - 2)
            phase = .mapping(p)
        case var .mapping(p) where p.isBack(r):
            let address = r.rax
            guard !LinuxABI.isError(Int64(bitPattern: address)), address & 0xFFF == 0, address < Self.kernelHalf else {
                r = p.saved
                phase = .failed("mmap of S's region in the borrowed process (pid \(p.pid)) returned \(Int64(bitPattern: address))")
                return true
            }
            p.region = address
            do {
                guard let view = userView(r) else { throw ShadowError.badArgument("P's paging mode") }
                try view.write(virtual: address, region.firstPage)
            } catch {
                inject(&r, LinuxABI.Syscall.munmap, [address, UInt64(stub.regionLength)], returningTo: p.saved.rcx - 2)
                phase = .unmapping(p, failure: "writing S's region in the borrowed process failed: \(error)")
                return true
            }
            // Into the fork code: a harmless call that returns there.
            r.rax = UInt64(LinuxABI.Syscall.getpid)
            r.rcx = address + UInt64(ForkCode.offset)
            phase = .forking(p)
        case var .forking(p) where r.root == p.root && r.rsp == p.saved.rsp
                && r.rcx == p.region + UInt64(region.forkCode.markReturnOffset):
            p.forkOutcome = Int64(bitPattern: r.rbx)
            let failure = p.forkOutcome > 0 ? nil : "the fork in the borrowed process (pid \(p.pid)) failed: \(p.forkOutcome)"
            r.r11 = p.saved.r11
            inject(&r, LinuxABI.Syscall.munmap, [p.region, UInt64(stub.regionLength)], returningTo: p.saved.rcx - 2)
            phase = .unmapping(p, failure: failure)
        case let .unmapping(p, failure) where p.isBack(r):
            // P exactly as it was, its own call on its way into the kernel.
            r = p.saved
            phase = failure.map { .failed($0) } ?? .waitingForShadow(p)
        case let .waitingForShadow(p):
            guard vcpu == shadowCPU, r.root != p.root, let s = shadowAt(r, borrowed: p) else { return false }
            phase = .done(s)
        default:
            return false
        }
        return true
    }

    /// P turned down: back as it was, its own call forwarded, never chosen again.
    private func reject(_ p: Borrowed, _ r: inout GuestRegisters, _ phase: inout Phase,
                        _ excluded: inout Set<UInt64>, _ rejected: inout Int) -> Bool {
        r = p.saved
        excluded.insert(p.root)
        rejected += 1
        phase = .choosing
        return true
    }

    /// Loads call `number` into `r` so that the kernel returns to `site`
    /// (P's own `syscall`, which then traps again with the result in rax).
    private func inject(_ r: inout GuestRegisters, _ number: Int, _ arguments: [UInt64], returningTo site: UInt64) {
        r.loadSyscall(number: number, arguments)
        r.rcx = site
    }

    /// The trapped caller's address space (its cr3: under KPTI the user
    /// root, which maps all of user space).
    private func userView(_ r: GuestRegisters) -> GuestView? {
        (try? r.pagingContext).map { GuestView(memory: memory, context: $0) }
    }

    /// S, if `r` is S in its stub loop with its region as written.
    private func shadowAt(_ r: GuestRegisters, borrowed p: Borrowed) -> ShadowProcess? {
        guard r.rcx == p.region + UInt64(ShadowStub.trapOffset), let view = userView(r),
              region.isIntact(at: p.region, in: view) else {
            return nil
        }
        return ShadowProcess(pid: 0, paging: view.context, regionBase: p.region, regionLength: stub.regionLength,
                             cookie: cookie, sleepNanoseconds: stub.sleepNanoseconds, borrowedPID: p.pid)
    }
}
