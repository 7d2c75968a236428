import Guest

/// What a `swvmm shadow --vm` client asks the VM's swvmm for: the policy
/// options of its command line (the server builds the supervisor from them).
public struct InspectorRequest: Equatable, Sendable {
    /// The command's name, for the server's messages only.
    public var command: String
    /// `--guest-path`: absolute paths also taken from the guest.
    public var guestPaths: [String]
    /// `--local-path`: absolute paths kept local.
    public var localPaths: [String]
    /// `--allow-writes`.
    public var allowWrites: Bool
    /// `--verbose`: one line per refused call, sent back to the client.
    public var verbose: Bool
    /// Not `--one-call`: read-ahead and memoized batches may answer calls.
    public var fastPath: Bool

    public init(command: String, guestPaths: [String] = [], localPaths: [String] = [],
                allowWrites: Bool = false, verbose: Bool = false, fastPath: Bool = true) {
        self.fastPath = fastPath
        self.command = command
        self.guestPaths = guestPaths
        self.localPaths = localPaths
        self.allowWrites = allowWrites
        self.verbose = verbose
    }
}

/// One message on the control socket (docs/control-socket.md). Each is one
/// SOCK_SEQPACKET packet: a header (magic, version, kind, payload length)
/// and a payload of fixed-size integers and length-prefixed UTF-8 strings.
public enum ControlMessage: Equatable, Sendable {
    /// Client → server, first: run an inspector with these options.
    case request(InspectorRequest)
    /// Server → client: this client's turn has come (the executor is being prepared).
    case accepted
    /// Server → client: go ahead, start the inspector under the filter for this fd range.
    case ready(guestFdRange: GuestFdRange)
    /// Client → server, with the listener and the pidfd attached (SCM_RIGHTS):
    /// the inspector started, pid `pid`.
    case inspector(pid: Int32)
    /// Server → client: a line for the client's stderr (`--verbose`, notices).
    case diagnostic(String)
    /// Server → client: no run (another user, a bad request, no executor); the text says why.
    case refused(String)
    /// Server → client, last: the run is over; `failure` says why the server
    /// ended it early; `report` what the run did and cost (all zero when
    /// nothing was served, e.g. the answer to `stopShadow`).
    case finished(failure: String?, report: RunReport)
    /// Client → server, first (instead of a request): end the VM's shadow
    /// process; answered with a diagnostic and `finished`, or `refused`.
    case stopShadow
}

/// The wire format's constants and limits. The peer is not trusted: every
/// length and count read is checked against these before it is used.
public enum ControlWire {
    /// "SWSC" read as a little-endian UInt32: the first bytes of every message.
    static let magic: UInt32 = 0x4353_5753
    /// The one version this swvmm speaks; a peer with another is refused with a message.
    public static let version: UInt16 = 3
    /// magic (4) + version (2) + kind (2) + payload length (4).
    static let headerSize = 12
    /// The largest message, header included: far above any real request, small
    /// enough to receive into one buffer.
    public static let maximumMessageSize = 64 * 1024
    /// The most `--guest-path` or `--local-path` values one request may carry.
    public static let maximumPaths = 256
    /// The longest path, in bytes (PATH_MAX without its NUL).
    public static let maximumPathBytes = InspectorMemory.pathMax - 1
    /// The longest text (diagnostic, refusal, command name), in bytes; longer
    /// texts are cut when sent.
    public static let maximumTextBytes = 4096
    /// The fds one message may carry (the inspector's listener and pidfd).
    public static let maximumFds = 2

    enum Kind: UInt16 {
        case request = 1, accepted = 2, ready = 3, inspector = 4, diagnostic = 5, refused = 6, finished = 7, stopShadow = 8
    }
}

extension ControlMessage {
    var kind: ControlWire.Kind {
        switch self {
        case .request: return .request
        case .accepted: return .accepted
        case .ready: return .ready
        case .inspector: return .inspector
        case .diagnostic: return .diagnostic
        case .refused: return .refused
        case .finished: return .finished
        case .stopShadow: return .stopShadow
        }
    }

    /// The message's bytes, header included. Throws `ControlError.tooLarge`
    /// when a request does not fit; texts are cut to `maximumTextBytes`.
    public func encoded() throws -> [UInt8] {
        var payload = WireWriter()
        switch self {
        case .request(let r):
            guard r.guestPaths.count <= ControlWire.maximumPaths, r.localPaths.count <= ControlWire.maximumPaths,
                  (r.guestPaths + r.localPaths).allSatisfy({ $0.utf8.count <= ControlWire.maximumPathBytes }) else {
                throw ControlError.tooLarge("at most \(ControlWire.maximumPaths) paths per option, each under \(InspectorMemory.pathMax) bytes")
            }
            payload.text(r.command)
            payload.list(r.guestPaths)
            payload.list(r.localPaths)
            payload.u8(r.allowWrites ? 1 : 0)
            payload.u8(r.verbose ? 1 : 0)
            payload.u8(r.fastPath ? 1 : 0)
        case .accepted, .stopShadow:
            break
        case .ready(let range):
            payload.u32(UInt32(bitPattern: range.lowerBound))
            payload.u32(UInt32(bitPattern: range.count))
        case .inspector(let pid):
            payload.u32(UInt32(bitPattern: pid))
        case .diagnostic(let text), .refused(let text):
            payload.text(text)
        case .finished(let failure, let report):
            payload.u8(failure == nil ? 0 : 1)
            payload.text(failure ?? "")
            report.encode(into: &payload)
        }
        var message = WireWriter()
        message.u32(ControlWire.magic)
        message.u16(ControlWire.version)
        message.u16(kind.rawValue)
        message.u32(UInt32(payload.bytes.count))
        message.bytes += payload.bytes
        guard message.bytes.count <= ControlWire.maximumMessageSize else {
            throw ControlError.tooLarge("a message of \(message.bytes.count) bytes (at most \(ControlWire.maximumMessageSize))")
        }
        return message.bytes
    }

    /// Parses one whole message; throws `ControlError.protocolViolation` (or
    /// `.versionMismatch`) for anything malformed, unknown or out of bounds.
    public static func decode(_ bytes: [UInt8]) throws -> ControlMessage {
        var reader = WireReader(bytes)
        guard bytes.count >= ControlWire.headerSize, bytes.count <= ControlWire.maximumMessageSize else {
            throw ControlError.protocolViolation("a message of \(bytes.count) bytes")
        }
        guard try reader.u32() == ControlWire.magic else { throw ControlError.protocolViolation("not a swvmm control message") }
        let version = try reader.u16()
        guard version == ControlWire.version else { throw ControlError.versionMismatch(peer: version) }
        let rawKind = try reader.u16()
        let length = try reader.u32()
        guard Int(length) == bytes.count - ControlWire.headerSize else {
            throw ControlError.protocolViolation("payload length \(length) for \(bytes.count - ControlWire.headerSize) bytes")
        }
        guard let kind = ControlWire.Kind(rawValue: rawKind) else {
            throw ControlError.protocolViolation("unknown message kind \(rawKind)")
        }
        let message: ControlMessage
        switch kind {
        case .request:
            let command = try reader.text(limit: ControlWire.maximumTextBytes)
            let guest = try reader.list(count: ControlWire.maximumPaths, each: ControlWire.maximumPathBytes)
            let local = try reader.list(count: ControlWire.maximumPaths, each: ControlWire.maximumPathBytes)
            let allowWrites = try reader.flag()
            let verbose = try reader.flag()
            let fastPath = try reader.flag()
            message = .request(InspectorRequest(command: command, guestPaths: guest, localPaths: local,
                                                allowWrites: allowWrites, verbose: verbose, fastPath: fastPath))
        case .accepted:
            message = .accepted
        case .ready:
            let lower = Int32(bitPattern: try reader.u32())
            let count = Int32(bitPattern: try reader.u32())
            message = .ready(guestFdRange: GuestFdRange(lowerBound: lower, count: count))
        case .inspector:
            message = .inspector(pid: Int32(bitPattern: try reader.u32()))
        case .diagnostic:
            message = .diagnostic(try reader.text(limit: ControlWire.maximumTextBytes))
        case .refused:
            message = .refused(try reader.text(limit: ControlWire.maximumTextBytes))
        case .finished:
            let failed = try reader.flag()
            let text = try reader.text(limit: ControlWire.maximumTextBytes)
            guard failed || text.isEmpty else { throw ControlError.protocolViolation("a reason for a run that did not fail") }
            message = .finished(failure: failed ? text : nil, report: try RunReport.decode(from: &reader))
        case .stopShadow:
            message = .stopShadow
        }
        guard reader.atEnd else { throw ControlError.protocolViolation("trailing bytes after a \(kind) message") }
        return message
    }
}

/// Appends little-endian integers and length-prefixed strings.
struct WireWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { bytes += value.littleEndianBytes() }
    mutating func u32(_ value: UInt32) { bytes += value.littleEndianBytes() }
    mutating func u64(_ value: UInt64) { bytes += value.littleEndianBytes() }

    /// A UInt32 byte count and the UTF-8 bytes, cut to `maximumTextBytes`
    /// (at a character boundary, so the reader's UTF-8 check still passes).
    mutating func text(_ value: String) {
        var utf8 = Array(value.utf8)
        if utf8.count > ControlWire.maximumTextBytes {
            var cut = ""
            for character in value {
                guard cut.utf8.count + String(character).utf8.count <= ControlWire.maximumTextBytes else { break }
                cut.append(character)
            }
            utf8 = Array(cut.utf8)
        }
        u32(UInt32(utf8.count))
        bytes += utf8
    }

    /// A UInt32 count, then each string.
    mutating func list(_ values: [String]) {
        u32(UInt32(values.count))
        for value in values { text(value) }
    }
}

/// Reads what `WireWriter` wrote, checking every length against the bytes
/// left and the caller's limit before using it.
struct WireReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { offset == bytes.count }

    private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - offset else {
            throw ControlError.protocolViolation("a field of \(count) bytes past the end of the message")
        }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    mutating func u8() throws -> UInt8 { try take(1).first ?? 0 }
    mutating func u16() throws -> UInt16 { UInt16(littleEndianBytes: try take(2)) }
    mutating func u32() throws -> UInt32 { UInt32(littleEndianBytes: try take(4)) }
    mutating func u64() throws -> UInt64 { UInt64(littleEndianBytes: try take(8)) }

    mutating func flag() throws -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        case let other: throw ControlError.protocolViolation("flag value \(other)")
        }
    }

    mutating func text(limit: Int) throws -> String {
        let count = try u32()
        guard count <= limit else { throw ControlError.protocolViolation("a text of \(count) bytes (at most \(limit))") }
        let raw = try take(Int(count))
        guard let text = String(validating: raw, as: UTF8.self), !text.utf8.contains(0) else {
            throw ControlError.protocolViolation("a text that is not UTF-8 without NUL")
        }
        return text
    }

    mutating func list(count limit: Int, each: Int) throws -> [String] {
        let count = try u32()
        guard count <= limit else { throw ControlError.protocolViolation("a list of \(count) items (at most \(limit))") }
        return try (0..<Int(count)).map { _ in try text(limit: each) }
    }
}
