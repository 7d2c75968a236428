/// A guest RAM size as users write it: `512M`, `2G`, `1048576K`, or plain bytes.
public struct MemorySize: Sendable, Equatable, CustomStringConvertible {
    /// Size in bytes.
    public let bytes: UInt64

    public init(bytes: UInt64) { self.bytes = bytes }

    /// Errors parsing a size.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case tooLarge(String)
        public var description: String {
            switch self {
            case let .malformed(text): return "'\(text)' is not a memory size (examples: 512M, 2G, 65536K)"
            case let .tooLarge(text): return "memory size '\(text)' is too large"
            }
        }
    }

    /// Parses `text`: digits with an optional K, M, G or T suffix (binary units, case-insensitive, optional trailing "iB"/"B").
    public init(parsing text: String) throws {
        var digits = Substring(text)
        var shift: UInt64 = 0
        for suffix in ["ib", "b"] where digits.lowercased().hasSuffix(suffix) && digits.count > suffix.count {
            digits = digits.dropLast(suffix.count)
            break
        }
        if let last = digits.last?.lowercased() {
            switch last {
            case "k": shift = 10
            case "m": shift = 20
            case "g": shift = 30
            case "t": shift = 40
            default: break
            }
            if shift > 0 { digits = digits.dropLast() }
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt64(digits) else {
            throw ParseError.malformed(text)
        }
        let (scaled, overflow) = value.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow else { throw ParseError.tooLarge(text) }
        bytes = scaled
    }

    public var description: String {
        for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] as [(String, UInt64)] where bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return "\(bytes >> shift)\(unit)"
        }
        return "\(bytes) bytes"
    }
}
