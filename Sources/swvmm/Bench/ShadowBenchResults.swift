/// One tool's line of `swvmm bench shadow`: what it cost through the target
/// beside the same binary run natively (in the guest, or on this host).
struct ShadowBenchRow: Equatable {
    /// The command line, e.g. "ps aux".
    var tool: String
    /// The guest's `uname -r`, taken through the target.
    var kernel: String
    /// "gdb" or "vm".
    var target: String
    /// Median wall seconds of the same binary run natively: inside the guest
    /// (`--guest-console`) or on this host (nil: it could not run there).
    var nativeSeconds: Double?
    /// Why `nativeSeconds` is missing.
    var nativeNote: String? = nil
    /// Median wall seconds through the target.
    var redirectedSeconds: Double
    /// Median wall seconds on the fast path with a trained memo.
    var memoizedSeconds: Double?
    /// Calls answered by the guest, left local, and notifications (first run).
    var redirectedCalls: Int
    var localCalls: Int
    var notifications: Int
    /// Target transitions (GDB stops, shadow vCPU exits) per redirected call, first run.
    var transitionsPerCallFirst: Double?
    /// The same in the first memoized run.
    var transitionsPerCallMemoized: Double?
    /// Interruptions of the guest's own vCPUs during the first run (vm only).
    var otherVCPUInterruptions: Int?
    /// Median host µs per redirected call: supervisor time minus target time (guest calls, region reads and writes).
    var hostMicrosecondsPerCall: Double
    /// The seccomp notification round trip measured in the same bench run, µs.
    var seccompRoundTripMicroseconds: Double

    var slowdown: Double? { nativeSeconds.map { redirectedSeconds / $0 } }
    var memoizedSlowdown: Double? { memoizedSeconds.flatMap { memoized in nativeSeconds.map { memoized / $0 } } }
}

/// Where and when a bench ran, for results.json.
struct ShadowBenchEnvironment: Equatable {
    var hostCPU: String
    var hostKernel: String
    /// The hypervisor this host itself runs under (its CPUID signature:
    /// "TCGTCGTCGTCG" in the KVM host's L1, where every instruction is
    /// emulated), nil on bare metal.
    var hostHypervisor: String?
    var guestKernel: String
    var swvmmVersion: String
    var gitCommit: String?
    /// "gdb" or "vm", and the address or socket given.
    var targetKind: String
    var targetAddress: String
    /// CPUs the guest has (its /sys/devices/system/cpu/present), where known.
    var guestCPUs: Int?
    /// Where native_s was measured: "guest" or "host".
    var nativeWhere: String
    /// ISO 8601, UTC.
    var date: String
    var runs: Int
}

/// The VM's shadow-process set-up times (`--vm` only), in seconds.
struct ShadowSetUpTimes: Equatable {
    /// Medians over `samples` bootstraps (stop-shadow, then a run of hostname).
    var bootstrapSeconds: Double
    /// Median time to the go-ahead of a run when S exists.
    var reconnectSeconds: Double
    var samples: Int
}

/// The results.csv writer.
enum ShadowBenchCSV {
    /// The columns, in order.
    static let columns = [
        "tool", "kernel", "target", "native_s", "redirected_s", "memoized_s", "slowdown", "memoized_slowdown",
        "redirected_calls", "local_calls", "notifications", "transitions_per_call_first", "transitions_per_call_memoized",
        "host_us_per_call", "seccomp_roundtrip_us", "other_vcpu_interruptions",
    ]

    /// The header and one line per row; absent values are empty cells.
    static func text(_ rows: [ShadowBenchRow]) -> String {
        var lines = [columns.joined(separator: ",")]
        for row in rows {
            let cells: [String] = [
                row.tool, row.kernel, row.target, row.nativeSeconds.map { number($0, 6) } ?? "", number(row.redirectedSeconds, 6),
                row.memoizedSeconds.map { number($0, 6) } ?? "", row.slowdown.map { number($0, 2) } ?? "",
                row.memoizedSlowdown.map { number($0, 2) } ?? "", "\(row.redirectedCalls)", "\(row.localCalls)",
                "\(row.notifications)", row.transitionsPerCallFirst.map { number($0, 3) } ?? "",
                row.transitionsPerCallMemoized.map { number($0, 3) } ?? "", number(row.hostMicrosecondsPerCall, 2),
                number(row.seccompRoundTripMicroseconds, 2), row.otherVCPUInterruptions.map { "\($0)" } ?? "",
            ]
            lines.append(cells.map(quoted).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// RFC 4180: a cell with a comma, quote or line break is quoted, its quotes doubled.
    static func quoted(_ cell: String) -> String {
        guard cell.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) else { return cell }
        return "\"" + cell.replacing("\"", with: "\"\"") + "\""
    }

    /// `value` with `digits` decimals ("nan" or "inf" never reach a file: they are empty).
    static func number(_ value: Double, _ digits: Int) -> String {
        value.isFinite ? formatted(value, digits: digits) : ""
    }
}

