import Glibc

/// What one supervised run did, for the benchmark.
public struct SupervisorCounters: Equatable, Sendable {
    /// Notifications received.
    public var notifications = 0
    /// Calls answered with the guest's result.
    public var redirected = 0
    /// Calls continued locally.
    public var local = 0
    /// Calls refused by the supervisor (ENOSYS, EROFS, EAFNOSUPPORT...).
    public var refused = 0
    /// Executor calls made (guest system calls, including the supervisor's own closes).
    public var guestCalls = 0
    /// Nanoseconds spent handling redirected calls, executor time included.
    public var redirectedNanoseconds: UInt64 = 0
    /// Nanoseconds of that spent reaching the target: guest calls and
    /// batches, reads and writes of S's region (gdbstub packets and guest
    /// stops; exits of the shadow vCPU and page walks on swvmm's machine).
    public var executorNanoseconds: UInt64 = 0
    /// Calls per syscall name, redirected or refused.
    public var byName: [String: Int] = [:]

    public init() {}

    /// One line for `--verbose`: how the inspector's system calls were placed.
    public var summary: String {
        "\(notifications) system calls seen: \(redirected) run in the guest, \(local) here, \(refused) refused"
    }

    /// The supervisor's own time per redirected call (reading the
    /// inspector's memory, marshalling, policy, the fast path's bookkeeping),
    /// target access excluded, in microseconds.
    public var hostMicrosecondsPerRedirectedCall: Double {
        guard redirected > 0 else { return 0 }
        let host = redirectedNanoseconds >= executorNanoseconds ? redirectedNanoseconds - executorNanoseconds : 0
        return Double(host) / Double(redirected) / 1000
    }
}
