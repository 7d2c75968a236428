/// Something that runs one system call in the guest kernel, in the context of
/// a process there (the shadow process S), with a scratch region of S's
/// memory for buffers.
///
/// This is the line between the two halves of shadow context: above it, the
/// supervisor catches an inspector's calls, copies their input
/// buffers into the region, rewrites pointers to region addresses, and copies
/// results back; below it, the executor makes the guest kernel run
/// the call through S, over any `Target` (swvmm's KVM machine or a GDB stub).
///
/// All offsets and lengths are checked against `regionSize` by conformers;
/// values S's kernel returns are untrusted by callers.
public protocol GuestSyscallExecutor: AnyObject {
    /// Guest-virtual address of the scratch region in S.
    var regionAddress: UInt64 { get }
    /// Usable bytes in the region.
    var regionSize: Int { get }
    /// Copies `bytes` into the region at `offset`.
    func writeRegion(offset: Int, _ bytes: [UInt8]) throws
    /// Reads `count` bytes of the region at `offset`.
    func readRegion(offset: Int, count: Int) throws -> [UInt8]
    /// Runs system call `number` with up to six raw arguments in S and returns
    /// the kernel's raw result (rax): a value, or `-errno` in -4095...-1.
    func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64
    /// Runs `calls` in S in order and returns each one's raw result. The
    /// batch's table (`BatchTable.size(of:)` bytes) goes into the region at
    /// `tableOffset`, which the caller reserved beside the calls' buffers.
    /// A GDB executor runs them in one guest stop; the default runs them one
    /// `syscall` at a time (`BatchTable.runOneByOne`).
    func syscalls(_ calls: [BatchedCall], tableOffset: Int) throws -> [Int64]
    /// Whether `syscalls` costs one transition for the whole batch. Only
    /// then does the fast path pay: its batches hold more calls than the
    /// inspector makes (an fstat and a second read per open), which an
    /// executor running them one at a time pays for call by call.
    var runsBatchesInOneTransition: Bool { get }
    /// No call is coming soon: let the guest run until the next one (which
    /// then waits for S again). Executors without a guest to hold do nothing.
    func idle() throws
    /// What the calls have cost the guest so far, by name (guest stops of a
    /// GDB target; exits of the shadow vCPU and interruptions of the others
    /// on swvmm's own machine). Counters only grow: a run's cost is the
    /// difference between readings before and after it.
    var measurements: [String: Int] { get }
    /// How the executor's S was found or made, for `--verbose` (nil: nothing to say).
    var origin: String? { get }
    /// How long making S took, when it was made for the run now starting
    /// (nil: S was found again, or its making is not this executor's to time).
    var setUpDuration: Duration? { get }
}

extension GuestSyscallExecutor {
    /// Exactly `count` region bytes at `offset` (an executor returning more is
    /// cut, fewer is an error).
    func regionBytes(_ offset: Int, _ count: Int) throws -> [UInt8] {
        let bytes = try readRegion(offset: offset, count: count)
        guard bytes.count >= count else { throw SupervisorError.executor("short region read: \(bytes.count) of \(count) bytes") }
        return Array(bytes.prefix(count))
    }

    public func syscalls(_ calls: [BatchedCall], tableOffset: Int) throws -> [Int64] {
        try BatchTable.runOneByOne(calls, on: self)
    }
    public func idle() throws {}
    public var runsBatchesInOneTransition: Bool { false }
    public var measurements: [String: Int] { [:] }
    public var origin: String? { nil }
    public var setUpDuration: Duration? { nil }
}

/// The change of `GuestSyscallExecutor.measurements` over a run, in words
/// ("calls 12, transitions 12 (1.00 per call), ..."); nil when there is none.
public func describeMeasurements(before: [String: Int], after: [String: Int]) -> String? {
    let names = after.keys.sorted { a, b in
        let order = [ExecutorMeasurement.calls, ExecutorMeasurement.transitions, ExecutorMeasurement.otherVCPUInterruptions]
        return (order.firstIndex(of: a) ?? order.count, a) < (order.firstIndex(of: b) ?? order.count, b)
    }
    guard !names.isEmpty else { return nil }
    let calls = (after[ExecutorMeasurement.calls] ?? 0) - (before[ExecutorMeasurement.calls] ?? 0)
    return names.map { name in
        let delta = (after[name] ?? 0) - (before[name] ?? 0)
        if name == ExecutorMeasurement.transitions, calls > 0 {
            let hundredths = (delta * 100 + calls / 2) / calls
            let fraction = hundredths % 100 < 10 ? "0\(hundredths % 100)" : "\(hundredths % 100)"
            return "\(name) \(delta) (\(hundredths / 100).\(fraction) per call)"
        }
        return "\(name) \(delta)"
    }.joined(separator: ", ")
}

/// Names of `GuestSyscallExecutor.measurements` that more than one executor reports.
public enum ExecutorMeasurement {
    /// System calls run in the guest.
    public static let calls = "calls"
    /// Times the guest (a GDB target) or the shadow vCPU (swvmm's machine)
    /// left guest execution for the host: the cost a call is counted in.
    public static let transitions = "transitions"
    /// Interruptions of the guest's own vCPUs (swvmm's machine), which native
    /// shadow context promises never happen while S serves.
    public static let otherVCPUInterruptions = "other vCPU interruptions"
}
