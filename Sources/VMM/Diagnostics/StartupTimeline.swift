import Guest

/// Monotonic timestamps of the steps that build a machine, so `swvmm bench
/// boot` can say where start-up time goes (swvmm's own work vs KVM's ioctls).
public struct StartupTimeline: Sendable {
    /// (step that just finished, CLOCK_MONOTONIC nanoseconds when it finished).
    public private(set) var marks: [(step: String, nanoseconds: UInt64)] = []

    public init() {}

    /// Records that `step` finished now.
    public mutating func mark(_ step: String) {
        marks.append((step, monotonicNanoseconds()))
    }
}
