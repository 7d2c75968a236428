import Foundation

/// The guest kernel's serial output, as printk messages without their timestamps.
struct KernelLog {
    /// Every line with the "[    0.000000] " prefix removed (lines without one kept as they are).
    let messages: [String]

    init(serialOutput: String) {
        messages = serialOutput
            .split(whereSeparator: \.isNewline)
            .map { KernelLog.strippingTimestamp(String($0)) }
    }

    /// "[   12.345678] text" -> "text".
    static func strippingTimestamp(_ line: String) -> String {
        guard line.hasPrefix("["), let close = line.firstIndex(of: "]") else { return line }
        let stamp = line[line.index(after: line.startIndex)..<close].trimmingCharacters(in: .whitespaces)
        guard !stamp.isEmpty, stamp.allSatisfy({ $0.isNumber || $0 == "." }) else { return line }
        return String(line[line.index(after: close)...].drop(while: { $0 == " " }))
    }

    /// The first message starting with `prefix`, with the prefix removed.
    func first(after prefix: String) -> String? {
        messages.first(where: { $0.hasPrefix(prefix) }).map { String($0.dropFirst(prefix.count)) }
    }

    /// All messages starting with `prefix`, with the prefix removed.
    func all(after prefix: String) -> [String] {
        messages.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }

    func contains(_ fragment: String) -> Bool {
        messages.contains(where: { $0.contains(fragment) })
    }
}

/// The line swvmm prints on stderr before starting the guest:
/// "swvmm: 512M RAM, 1 vCPU(s), command line: <text>".
struct StartLine {
    let memory: String
    let cpus: Int
    let commandLine: String

    init?(stderr: String) {
        guard let line = stderr.split(separator: "\n").first(where: { $0.hasPrefix("swvmm: ") && $0.contains(" RAM, ") }),
              let marker = line.range(of: ", command line: ") else { return nil }
        let head = line[line.index(line.startIndex, offsetBy: "swvmm: ".count)..<marker.lowerBound]  // "512M RAM, 1 vCPU(s)"
        let parts = head.components(separatedBy: " RAM, ")
        guard parts.count == 2, let cpus = Int(parts[1].replacingOccurrences(of: " vCPU(s)", with: "")) else { return nil }
        memory = parts[0]
        self.cpus = cpus
        commandLine = String(line[marker.upperBound...])
    }
}
