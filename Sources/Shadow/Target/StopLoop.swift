import Guest

/// Running the guest until the breakpoint hit a caller is waiting for; hits
/// that are not the caller's (other processes at the same address) the
/// target moves past by itself.
struct StopLoop {
    let target: Target
    /// Guest stops (breakpoint hits, steps, timeouts) seen by this loop.
    private(set) var stops = 0
    /// Host time spent waiting for the guest (inside resume).
    private(set) var waiting: Duration = .zero
    /// Upper bound on handled hits one wait may see: a guest that hits our
    /// breakpoints in a tight loop cannot keep the host busy forever.
    static let maximumStops = 20_000

    init(target: Target) { self.target = target }

    /// What the waiting code makes of one breakpoint hit.
    enum Verdict {
        /// The hit waited for: `run` returns it, the guest stays stopped.
        case accept
        /// Not ours (another process): the target moves that vCPU past it.
        case skip
        /// Ours, and the handler already moved the vCPU on (set its rip): resume.
        case handled
    }

    /// Resumes the guest until a breakpoint hit that `judge` accepts and
    /// returns it (the guest is then stopped). Nil when `deadline` passes
    /// first. Throws when the guest ends or stops for a reason that is not a
    /// breakpoint.
    mutating func run(until deadline: ContinuousClock.Instant, during what: String,
                      judge: (VCPUID, GuestRegisters) throws -> Verdict) throws -> (VCPUID, GuestRegisters)? {
        let clock = ContinuousClock()
        var seen = 0
        while seen < StopLoop.maximumStops {
            seen += 1
            let remaining = deadline - clock.now
            guard remaining > .zero else { return nil }
            let start = clock.now
            let stopsBefore = target.stops
            var verdict = Verdict.skip
            let event = try target.resume(until: remaining) { vcpu, registers in
                verdict = try judge(vcpu, registers)
                return verdict != .skip
            }
            waiting += clock.now - start
            stops += target.stops - stopsBefore
            switch event {
            case let .breakpoint(vcpu, registers):
                if verdict == .accept { return (vcpu, registers) }
            case .timeout:
                return nil
            case .exited:
                throw ShadowError.guestGone(during: what)
            case .debugTrap, .interrupted:
                // A trap without a breakpoint of ours (a step's leftover) or a
                // stop someone asked for: run on.
                break
            case let .other(vcpu, reason):
                throw ShadowError.unexpectedStop(during: what, vcpu: vcpu.rawValue, reason: reason)
            }
        }
        throw ShadowError.unexpectedStop(during: what, vcpu: -1, reason: "more than \(StopLoop.maximumStops) stops")
    }
}
