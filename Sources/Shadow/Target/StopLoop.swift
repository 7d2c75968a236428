/// Running the guest until the breakpoint hit a caller is waiting for, moving
/// every other vCPU that hits one of our breakpoints past it.
struct StopLoop {
    let target: Target
    /// Guest stops (breakpoint hits, steps, timeouts) seen by this loop.
    private(set) var stops = 0
    /// Host time spent waiting for the guest (inside resume/step).
    private(set) var waiting: Duration = .zero
    /// Upper bound on stops one wait may see: a guest that hits our
    /// breakpoints in a tight loop cannot keep the host busy forever.
    static let maximumStops = 20_000
    /// Time one single-step may take (the step is one instruction).
    static let stepTimeout: Duration = .seconds(5)

    init(target: Target) { self.target = target }

    /// What the waiting code makes of one breakpoint hit.
    enum Verdict {
        /// The hit waited for: `run` returns it, the guest stays stopped.
        case accept
        /// Not ours (another process): step that vCPU past the breakpoint.
        case skip
        /// Ours, and the handler already moved the vCPU on (set its rip): resume.
        case handled
    }

    /// Resumes the guest until a breakpoint hit that `judge` accepts and
    /// returns it (the guest is then stopped). Skipped hits are stepped
    /// over. Nil when `deadline` passes first. Throws when the guest ends or
    /// stops for a reason that is not a breakpoint.
    mutating func run(until deadline: ContinuousClock.Instant, during what: String,
                      judge: (VCPUID, GuestRegisters) throws -> Verdict) throws -> (VCPUID, GuestRegisters)? {
        let clock = ContinuousClock()
        var pending: StopEvent? = nil
        var seen = 0
        while seen < StopLoop.maximumStops {
            seen += 1
            let event: StopEvent
            if let next = pending {
                event = next
                pending = nil
            } else {
                let remaining = deadline - clock.now
                guard remaining > .zero else { return nil }
                let start = clock.now
                event = try target.resume(until: remaining)
                waiting += clock.now - start
                stops += 1
            }
            switch event {
            case let .breakpoint(vcpu, registers):
                switch try judge(vcpu, registers) {
                case .accept: return (vcpu, registers)
                case .handled: continue
                case .skip: break
                }
                let start = clock.now
                let stepped = try target.step(vcpu, timeout: StopLoop.stepTimeout)
                waiting += clock.now - start
                stops += 1
                switch stepped {
                case .breakpoint: pending = stepped
                case .exited: throw ShadowError.guestGone(during: what)
                case .timeout: throw ShadowError.unexpectedStop(during: "a single-step in " + what, vcpu: vcpu.rawValue, signal: 0)
                case .stopped: break
                }
            case .timeout:
                return nil
            case .exited:
                throw ShadowError.guestGone(during: what)
            case let .stopped(vcpu, signal):
                // A trap without a breakpoint of ours (a step's leftover) or a
                // stop someone asked for: run on. Anything else is news.
                guard signal == StopLoop.sigtrap || signal == StopLoop.sigint else {
                    throw ShadowError.unexpectedStop(during: what, vcpu: vcpu.rawValue, signal: signal)
                }
            }
        }
        throw ShadowError.unexpectedStop(during: what + " (more than \(StopLoop.maximumStops) stops)", vcpu: -1, signal: 0)
    }

    /// Signal numbers in stop events (GDB numbering, equal to Linux's here).
    static let sigint = 2, sigtrap = 5
}
