import Synchronization

/// Counts of VM exits by kind, shared by all vCPU threads: the histogram
/// `--trace-exits` prints, and the benchmark's exits-per-second figure.
public final class ExitStatistics: Sendable {
    private let counts = Mutex<[String: UInt64]>([:])

    public init() {}

    /// Records one exit of kind `name` (kvm.h's name, see `VMExit.name`).
    public func record(_ name: String) {
        counts.withLock { $0[name, default: 0] += 1 }
    }

    /// Exits so far, by kind.
    public var snapshot: [String: UInt64] { counts.withLock { $0 } }

    /// Total exits so far.
    public var total: UInt64 { snapshot.values.reduce(0, +) }

    /// A text histogram, most frequent first, bars scaled to `width` characters.
    public func histogram(width: Int = 40) -> String {
        let rows = snapshot.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        guard let largest = rows.first?.value, largest > 0 else { return "no VM exits\n" }
        let nameWidth = rows.map(\.key.count).max() ?? 0
        var text = "VM exits by reason (\(total) in all):\n"
        for (name, count) in rows {
            let bar = String(repeating: "#", count: max(1, Int(count * UInt64(width) / largest)))
            text += "  \(name.padding(to: nameWidth))  \(String(count).leftPadding(to: 10))  \(bar)\n"
        }
        return text
    }
}

extension String {
    func padding(to width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
    func leftPadding(to width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
