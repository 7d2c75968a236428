import Guest

/// Timings of one bootstrap, for reports.
public struct BootstrapReport: Sendable {
    /// From the start of the bootstrap to S running its stub.
    public var total: Duration
    /// Candidates passed over (PID 1, refused by `acceptBorrowed`).
    public var rejectedCandidates: Int
    /// Guest stops the bootstrap caused.
    public var stops: Int
    /// The borrowed process's registers when it was caught, and as read back
    /// from its vCPU after the restore (user state must be equal).
    public var borrowedBefore: GuestRegisters
    public var borrowedAfter: GuestRegisters
}
