/// What one run served over the control socket cost, as the server's
/// `finished` message carries it: the supervisor's counters, the executor's
/// measurement deltas over the run, how S was found or made, and how long
/// making it took when it was made for this run.
public struct RunReport: Equatable, Sendable {
    /// The run's supervisor counters, those the wire carries: notifications,
    /// redirected, local, refused, redirected and executor nanoseconds
    /// (`guestCalls` and `byName` stay zero and empty).
    public var counters: SupervisorCounters
    /// `GuestSyscallExecutor.measurements` after the run minus before it, by name.
    public var measurementDeltas: [String: Int]
    /// `GuestSyscallExecutor.origin` for this run (nil: the executor said nothing).
    public var origin: String?
    /// How long making S took, when it was made for this run (nil: S was reused).
    public var setUpNanoseconds: UInt64?

    public init(counters: SupervisorCounters = SupervisorCounters(), measurementDeltas: [String: Int] = [:],
                origin: String? = nil, setUpNanoseconds: UInt64? = nil) {
        var carried = SupervisorCounters()
        carried.notifications = counters.notifications
        carried.redirected = counters.redirected
        carried.local = counters.local
        carried.refused = counters.refused
        carried.redirectedNanoseconds = counters.redirectedNanoseconds
        carried.executorNanoseconds = counters.executorNanoseconds
        self.counters = carried
        self.measurementDeltas = measurementDeltas
        self.origin = origin
        self.setUpNanoseconds = setUpNanoseconds
    }

    /// The counters of a supervised run, the executor's readings around it,
    /// and what the executor says of its S.
    public init(counters: SupervisorCounters, measuredBefore: [String: Int], measuredAfter: [String: Int],
                origin: String?, setUp: Duration?) {
        var deltas: [String: Int] = [:]
        for (name, after) in measuredAfter { deltas[name] = after - (measuredBefore[name] ?? 0) }
        self.init(counters: counters, measurementDeltas: deltas, origin: origin,
                  setUpNanoseconds: setUp.map { $0 < .zero ? 0 : $0.wholeNanoseconds })
    }
}

extension ControlWire {
    /// The most measurement names one report may carry (executors report a handful).
    public static let maximumMeasurements = 32
    /// The longest measurement name, in bytes.
    public static let maximumMeasurementNameBytes = 64
}

extension RunReport {
    /// Counters as u64, the deltas as a count and (name, i64) pairs in
    /// ascending name order, then flag + origin text, flag + u64 set-up
    /// nanoseconds. Names longer than the bound and deltas past the count
    /// are left out rather than failing the run's last word.
    func encode(into writer: inout WireWriter) {
        for count in [counters.notifications, counters.redirected, counters.local, counters.refused] {
            writer.u64(UInt64(max(0, count)))
        }
        writer.u64(counters.redirectedNanoseconds)
        writer.u64(counters.executorNanoseconds)
        let names = measurementDeltas.keys.filter { !$0.isEmpty && $0.utf8.count <= ControlWire.maximumMeasurementNameBytes }
            .sorted().prefix(ControlWire.maximumMeasurements)
        writer.u32(UInt32(names.count))
        for name in names {
            writer.text(name)
            writer.u64(UInt64(bitPattern: Int64(measurementDeltas[name] ?? 0)))
        }
        writer.u8(origin == nil ? 0 : 1)
        writer.text(origin ?? "")
        writer.u8(setUpNanoseconds == nil ? 0 : 1)
        writer.u64(setUpNanoseconds ?? 0)
    }

    /// Reads what `encode` wrote; only its canonical form is accepted (names
    /// strictly ascending, nothing after an absent value), so a decoded
    /// report encodes back to the same bytes.
    static func decode(from reader: inout WireReader) throws -> RunReport {
        var report = RunReport()
        func count() throws -> Int {
            let value = try reader.u64()
            guard value <= UInt64(Int.max) else { throw ControlError.protocolViolation("a count of \(value)") }
            return Int(value)
        }
        report.counters.notifications = try count()
        report.counters.redirected = try count()
        report.counters.local = try count()
        report.counters.refused = try count()
        report.counters.redirectedNanoseconds = try reader.u64()
        report.counters.executorNanoseconds = try reader.u64()
        let names = try reader.u32()
        guard names <= ControlWire.maximumMeasurements else {
            throw ControlError.protocolViolation("\(names) measurements (at most \(ControlWire.maximumMeasurements))")
        }
        var previous: String?
        for _ in 0 ..< names {
            let name = try reader.text(limit: ControlWire.maximumMeasurementNameBytes)
            guard !name.isEmpty, previous.map({ $0 < name }) ?? true else {
                throw ControlError.protocolViolation("measurement names not strictly ascending")
            }
            previous = name
            report.measurementDeltas[name] = Int(Int64(bitPattern: try reader.u64()))
        }
        let hasOrigin = try reader.flag()
        let origin = try reader.text(limit: ControlWire.maximumTextBytes)
        guard hasOrigin || origin.isEmpty else { throw ControlError.protocolViolation("an origin text marked absent") }
        report.origin = hasOrigin ? origin : nil
        let hasSetUp = try reader.flag()
        let setUp = try reader.u64()
        guard hasSetUp || setUp == 0 else { throw ControlError.protocolViolation("a set-up time marked absent") }
        report.setUpNanoseconds = hasSetUp ? setUp : nil
        return report
    }
}

extension Duration {
    /// Whole nanoseconds (non-negative durations of a run; saturates far past any real one).
    var wholeNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        let whole = UInt64(clamping: seconds).multipliedReportingOverflow(by: 1_000_000_000)
        guard !whole.overflow else { return .max }
        return whole.partialValue &+ UInt64(clamping: attoseconds / 1_000_000_000)
    }
}
