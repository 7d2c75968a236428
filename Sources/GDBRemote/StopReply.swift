/// A thread id as the stub writes it ("Packets" > thread-id): `TID`, or with
/// `multiprocess+` negotiated `pPID.TID`; hex numbers, `-1` = all, `0` = any.
public struct ThreadID: Hashable, CustomStringConvertible {
    public let process: Int?
    public let thread: Int

    public init(process: Int?, thread: Int) {
        self.process = process
        self.thread = thread
    }

    /// Parses `TID` or `pPID.TID`; nil if malformed or out of range.
    public init?(parsing text: some StringProtocol) {
        if text.hasPrefix("p") {
            let rest = text.dropFirst()
            let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, let pid = ThreadID.number(parts[0]), let tid = ThreadID.number(parts[1]) else { return nil }
            self.init(process: pid, thread: tid)
        } else {
            guard let tid = ThreadID.number(text) else { return nil }
            self.init(process: nil, thread: tid)
        }
    }

    private static func number(_ text: some StringProtocol) -> Int? {
        if text == "-1" { return -1 }
        guard !text.isEmpty, text.utf8.count <= 8 else { return nil }  // bounded: ids fit 32 bits
        return Int(text, radix: 16)
    }

    private static func format(_ n: Int) -> String { n < 0 ? "-1" : String(n, radix: 16) }

    /// The form to send: `pPID.TID` when a process is known, else `TID`.
    public var description: String {
        if let process { return "p\(ThreadID.format(process)).\(ThreadID.format(thread))" }
        return ThreadID.format(thread)
    }

    /// Same thread, ignoring a missing process id on either side.
    func matches(_ other: ThreadID) -> Bool {
        thread == other.thread && (process == nil || other.process == nil || process == other.process)
    }
}

/// Why the target stopped ("Stop Reply Packets").
public enum StopReply: Equatable {
    /// `S AA` / `T AA n1:r1;...`: stopped with signal AA; `thread` from `thread:`.
    case signal(Int, thread: ThreadID?, pairs: [String: String])
    /// `W AA`: the process exited with status AA.
    case exited(status: Int)
    /// `X AA`: the process was killed by signal AA.
    case terminated(signal: Int)

    /// Whether `packet` has the shape of a stop reply (S, T, W or X and two hex
    /// digits). No other reply this client asks for starts that way.
    static func looksLikeStop(_ packet: [UInt8]) -> Bool {
        guard packet.count >= 3, [UInt8(ascii: "S"), UInt8(ascii: "T"), UInt8(ascii: "W"), UInt8(ascii: "X")].contains(packet[0]) else { return false }
        return hexValue(packet[1], packet[2]) != nil
    }

    /// Parses a stop reply; throws `badReply` for anything else.
    init(parsing packet: [UInt8], request: String) throws {
        let bad = GDBRemoteError.badReply(request: request, reply: excerpt(packet))
        guard StopReply.looksLikeStop(packet), let code = hexValue(packet[1], packet[2]) else { throw bad }
        let rest = String(decoding: packet[3...], as: UTF8.self)
        switch packet[0] {
        case UInt8(ascii: "W"): self = .exited(status: Int(code))
        case UInt8(ascii: "X"): self = .terminated(signal: Int(code))
        case UInt8(ascii: "S"): self = .signal(Int(code), thread: nil, pairs: [:])
        default:
            var pairs: [String: String] = [:]
            for item in rest.split(separator: ";") {
                guard let colon = item.firstIndex(of: ":") else { throw bad }
                pairs[String(item[..<colon])] = String(item[item.index(after: colon)...])
            }
            var thread: ThreadID? = nil
            if let text = pairs["thread"] {
                guard let id = ThreadID(parsing: text) else { throw bad }
                thread = id
            }
            self = .signal(Int(code), thread: thread, pairs: pairs)
        }
    }
}
