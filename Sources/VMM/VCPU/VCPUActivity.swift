import Guest

/// Where one vCPU's thread stood at a moment (`VCPUHandle.activity`): for
/// messages about a vCPU that looks stuck, it tells a guest that stopped
/// making exits (halted for good, hung) from a thread held up in swvmm.
public struct VCPUActivity: Sendable, Equatable, CustomStringConvertible {
    /// Where the thread was.
    public enum Place: Sendable, Equatable {
        /// It has not entered the guest yet.
        case notStarted
        /// In KVM_RUN since its last entry, this long ago.
        case inGuest(for: Duration)
        /// Out of KVM_RUN since an exit of this kind, this long ago.
        case outOfGuest(for: Duration, after: String)
    }

    public let id: Int
    public let state: VCPUState
    /// Exits taken so far.
    public let exits: Int
    public let place: Place

    /// `now`, `lastEntry` and the exit's time are `monotonicNanoseconds()` readings.
    init(id: Int, state: VCPUState, exits: Int, now: UInt64, lastEntry: UInt64?, lastExit: (name: String, at: UInt64)?) {
        self.id = id
        self.state = state
        self.exits = exits
        func since(_ time: UInt64) -> Duration { .nanoseconds(Int64(clamping: now >= time ? now - time : 0)) }
        if let entry = lastEntry, entry >= lastExit?.at ?? 0 {
            place = .inGuest(for: since(entry))
        } else if let exit = lastExit {
            place = .outOfGuest(for: since(exit.at), after: exit.name)
        } else {
            place = .notStarted
        }
    }

    public var description: String {
        let head = "vCPU \(id) (\(state))"
        func seconds(_ duration: Duration) -> String {
            let value = duration.seconds
            return value < 1 ? "\(Int((value * 1000).rounded())) ms" : "\(Int(value.rounded())) s"
        }
        switch place {
        case .notStarted:
            return "\(head): has not entered the guest yet"
        case .inGuest(let duration):
            return "\(head): in the guest for \(seconds(duration)) without an exit (\(exits) exits before)"
        case .outOfGuest(let duration, let name):
            return "\(head): out of the guest for \(seconds(duration)), since an exit \(name) (\(exits) exits so far)"
        }
    }
}
