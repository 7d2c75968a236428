import Guest

/// A point on the monotonic clock after which a wait gives up.
///
/// Fixed when made: nothing the peer sends moves it. Loops that consume
/// input without finishing their wait (acks, unsolicited packets, console
/// output) call `check` on every turn, so a flooding peer ends a wait on
/// time instead of keeping it busy forever.
struct Deadline {
    let nanoseconds: UInt64
    /// The length of the whole wait, for messages ("within 5 s").
    let seconds: Double

    /// `seconds` from now; negative or non-finite values mean "now".
    init(seconds: Double) {
        let clamped = seconds.isFinite ? min(max(seconds, 0), 1e6) : 0
        self.seconds = clamped
        nanoseconds = monotonicNanoseconds() &+ UInt64(clamped * 1e9)
    }

    /// Milliseconds left, for poll(2); 0 once passed.
    var remainingMilliseconds: Int32 {
        let now = monotonicNanoseconds()
        guard nanoseconds > now else { return 0 }
        return Int32(min((nanoseconds - now + 999_999) / 1_000_000, UInt64(Int32.max)))
    }

    var hasPassed: Bool { monotonicNanoseconds() >= nanoseconds }

    /// Throws `timeout` for `what` once the deadline has passed.
    func check(waitingFor what: String) throws {
        if hasPassed { throw GDBRemoteError.timeout(waitingFor: what, seconds: seconds) }
    }
}
