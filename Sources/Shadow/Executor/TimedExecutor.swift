import Guest

/// An executor that counts the host time spent in another: every guest call
/// and batch, and every read and write of S's region. The supervisor's
/// "host time per call" is its handling time less this: what it costs to
/// reach the target (a gdbstub's packets and guest stops, swvmm's exits and
/// page walks) is the target's, not the supervisor's own work.
final class TimedExecutor: GuestSyscallExecutor {
    let wrapped: GuestSyscallExecutor
    /// Host nanoseconds spent in `wrapped` so far.
    private(set) var nanoseconds: UInt64 = 0

    init(_ wrapped: GuestSyscallExecutor) { self.wrapped = wrapped }

    private func timed<T>(_ body: () throws -> T) rethrows -> T {
        let start = monotonicNanoseconds()
        defer { nanoseconds &+= monotonicNanoseconds() &- start }
        return try body()
    }

    var regionAddress: UInt64 { wrapped.regionAddress }
    var regionSize: Int { wrapped.regionSize }
    func writeRegion(offset: Int, _ bytes: [UInt8]) throws { try timed { try wrapped.writeRegion(offset: offset, bytes) } }
    func readRegion(offset: Int, count: Int) throws -> [UInt8] { try timed { try wrapped.readRegion(offset: offset, count: count) } }
    func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 { try timed { try wrapped.syscall(number, arguments) } }
    func syscalls(_ calls: [BatchedCall], tableOffset: Int) throws -> [Int64] {
        try timed { try wrapped.syscalls(calls, tableOffset: tableOffset) }
    }
    func idle() throws { try timed { try wrapped.idle() } }
    var runsBatchesInOneTransition: Bool { wrapped.runsBatchesInOneTransition }
    var measurements: [String: Int] { wrapped.measurements }
    var origin: String? { wrapped.origin }
    var setUpDuration: Duration? { wrapped.setUpDuration }
}
