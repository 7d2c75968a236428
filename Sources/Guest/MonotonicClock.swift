import Glibc

/// CLOCK_MONOTONIC in nanoseconds: the one clock for deadlines, timings and
/// start-up marks. It is system-wide, so a parent process can compare a
/// child's readings with its own (`swvmm bench boot`).
public func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
}

extension Duration {
    /// The duration in seconds, as a Double (for messages and rates).
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
