/// Access counts of one registered range (for `--trace-exits` and exit statistics).
public struct BusRangeStatistics: Equatable, Sendable {
    /// The name given at registration.
    public var name: String
    /// First address of the range.
    public var base: UInt64
    /// Number of addresses in the range.
    public var length: UInt64
    /// Guest reads dispatched to this range.
    public var reads: UInt64
    /// Guest writes dispatched to this range.
    public var writes: UInt64
}

/// A snapshot of a bus's counters.
public struct BusStatistics: Equatable, Sendable {
    /// Which address space the bus decodes.
    public var space: BusAddressSpace
    /// Registered ranges in address order.
    public var ranges: [BusRangeStatistics]
    /// Reads no device claimed (answered with all-ones bytes).
    public var unclaimedReads: UInt64
    /// Writes no device claimed (dropped).
    public var unclaimedWrites: UInt64
    /// Accesses per unclaimed address, for the first `BusCore.unclaimedAddressLimit`
    /// distinct addresses (enough to name what a guest probes, bounded against a guest sweeping memory).
    public var unclaimedByAddress: [UInt64: UInt64]
}
