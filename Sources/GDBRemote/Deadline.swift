import Guest

/// A point on the monotonic clock after which a wait gives up.
struct Deadline {
    let nanoseconds: UInt64

    /// `seconds` from now; negative or non-finite values mean "now".
    init(seconds: Double) {
        let clamped = seconds.isFinite ? min(max(seconds, 0), 1e6) : 0
        nanoseconds = monotonicNanoseconds() &+ UInt64(clamped * 1e9)
    }

    /// Milliseconds left, for poll(2); 0 once passed.
    var remainingMilliseconds: Int32 {
        let now = monotonicNanoseconds()
        guard nanoseconds > now else { return 0 }
        return Int32(min((nanoseconds - now + 999_999) / 1_000_000, UInt64(Int32.max)))
    }

    var hasPassed: Bool { monotonicNanoseconds() >= nanoseconds }
}

extension Duration {
    /// The duration in seconds, as a Double.
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
