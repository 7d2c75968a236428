/// The results.json writer: the CSV's rows with their environment, the
/// set-up times (`--vm`) and a note per column. Hand-written JSON (no
/// Foundation in this target): objects keep their keys in the order given.
enum ShadowBenchJSON {
    /// What each column means, and why some are empty.
    static let notes: [(String, String)] = [
        ("native_s", "median wall seconds of the same host binary run natively: inside the guest with --guest-console (copied there by make images; "
            + "timed between two readings of date +%s%N there, less what the readings cost with nothing between them), "
            + "else directly on this host (environment.native_where); null where it could not run, and native_note says why"),
        ("redirected_s", "median wall seconds of the tool through the target on the one-call path (--one-call: every machine call is its own guest call)"),
        ("memoized_s", "median wall seconds with the fast path after one untimed training run: read-ahead and the memo's predicted batches, which a GDB target runs in one stop; swvmm's VM would still exit once per call in a batch, so there the fast path is off and these runs go the one-call way"),
        ("slowdown", "redirected_s / native_s"),
        ("memoized_slowdown", "memoized_s / native_s"),
        ("redirected_calls", "calls answered with the guest's result (SupervisorCounters.redirected, first one-call run)"),
        ("local_calls", "calls continued on the host (first one-call run)"),
        ("notifications", "seccomp notifications received (first one-call run)"),
        ("transitions_per_call_first", "target transitions per redirected call: GDB stops (gdb) or shadow vCPU exits (vm), first one-call run"),
        ("transitions_per_call_memoized", "the same in the first memoized run"),
        ("host_us_per_call", "median host microseconds per redirected call on the one-call path: supervisor time minus target time (guest calls, reads and writes of the region)"),
        ("seccomp_roundtrip_us", "the seccomp user-notification round trip measured in the same bench run (NotificationRoundTrip)"),
        ("other_vcpu_interruptions", "exits of the guest's own vCPUs during the first run (vm only; native shadow promises 0)"),
        ("kernel", "the guest's uname -r, taken through the target"),
        ("host_hypervisor", "the CPUID signature of the hypervisor this host itself runs under (TCGTCGTCGTCG: the KVM host's L1, every instruction emulated); null on bare metal"),
        ("guest_cpus", "CPUs the guest kernel has (/sys/devices/system/cpu/present through the target; a swvmm VM's shadow vCPU included)"),
        ("shadow_setup", "vm only: bootstrap_s, median set-up time of S over samples runs of --stop-shadow then hostname; "
            + "reconnect_s, median time from connecting to the go-ahead of a run when S exists"),
    ]

    /// The whole document, ending with a newline.
    static func text(rows: [ShadowBenchRow], environment: ShadowBenchEnvironment, setUp: ShadowSetUpTimes?) -> String {
        let env = object([
            ("host_cpu", string(environment.hostCPU)), ("host_kernel", string(environment.hostKernel)),
            ("host_hypervisor", environment.hostHypervisor.map(string) ?? "null"),
            ("guest_kernel", string(environment.guestKernel)), ("swvmm_version", string(environment.swvmmVersion)),
            ("git_commit", environment.gitCommit.map(string) ?? "null"), ("target_kind", string(environment.targetKind)),
            ("target_address", string(environment.targetAddress)), ("guest_cpus", environment.guestCPUs.map { "\($0)" } ?? "null"),
            ("native_where", string(environment.nativeWhere)),
            ("date", string(environment.date)), ("runs", "\(environment.runs)"),
        ], indent: 1)
        let set = setUp.map { s in
            object([("bootstrap_s", number(s.bootstrapSeconds)), ("reconnect_s", number(s.reconnectSeconds)),
                    ("samples", "\(s.samples)")], indent: 1)
        } ?? "null"
        let items = rows.map { row in
            object([
                ("tool", string(row.tool)), ("kernel", string(row.kernel)), ("target", string(row.target)),
                ("native_s", optional(row.nativeSeconds)), ("native_note", row.nativeNote.map(string) ?? "null"),
                ("redirected_s", number(row.redirectedSeconds)),
                ("memoized_s", optional(row.memoizedSeconds)), ("slowdown", optional(row.slowdown)),
                ("memoized_slowdown", optional(row.memoizedSlowdown)), ("redirected_calls", "\(row.redirectedCalls)"),
                ("local_calls", "\(row.localCalls)"), ("notifications", "\(row.notifications)"),
                ("transitions_per_call_first", optional(row.transitionsPerCallFirst)),
                ("transitions_per_call_memoized", optional(row.transitionsPerCallMemoized)),
                ("host_us_per_call", number(row.hostMicrosecondsPerCall)),
                ("seccomp_roundtrip_us", number(row.seccompRoundTripMicroseconds)),
                ("other_vcpu_interruptions", row.otherVCPUInterruptions.map { "\($0)" } ?? "null"),
            ], indent: 2)
        }
        let results = items.isEmpty ? "[]" : "[\n    " + items.joined(separator: ",\n    ") + "\n  ]"
        return object([("environment", env), ("shadow_setup", set), ("results", results),
                       ("notes", object(notes.map { ($0.0, string($0.1)) }, indent: 1))], indent: 0) + "\n"
    }

    /// `{ "key": value, ... }` with `value`s already JSON, one key a line at `indent` levels.
    static func object(_ members: [(String, String)], indent: Int) -> String {
        let inner = String(repeating: "  ", count: indent + 1), outer = String(repeating: "  ", count: indent)
        return "{\n" + members.map { inner + string($0.0) + ": " + $0.1 }.joined(separator: ",\n") + "\n" + outer + "}"
    }

    /// A JSON string: quotes, backslashes and control characters escaped (RFC 8259 §7).
    static func string(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A JSON number; null for a value JSON cannot hold (NaN, infinity).
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        return "\(value)"
    }

    static func optional(_ value: Double?) -> String { value.map(number) ?? "null" }
}
