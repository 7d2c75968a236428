import Guest

/// Framing of the GDB remote serial protocol ("Remote Protocol" > "Overview"):
/// `$data#cs` with cs the modulo-256 sum of data's bytes as two hex digits,
/// `}`-escapes, run-length encoding, and `+`/`-` acknowledgments.
public enum Packet {
    /// Starts a packet.
    static let start: UInt8 = 0x24          // '$'
    /// Ends a packet's data; two hex checksum digits follow.
    static let end: UInt8 = 0x23            // '#'
    /// Escape: the next byte is the original XOR `escapeXor` ("Overview").
    static let escape: UInt8 = 0x7D         // '}'
    static let escapeXor: UInt8 = 0x20
    /// Run-length marker: the next byte minus `repeatBias` is the number of
    /// *additional* copies of the preceding byte ("Overview").
    static let repeatMarker: UInt8 = 0x2A   // '*'
    static let repeatBias = 29
    /// Positive and negative acknowledgment ("Overview").
    static let ack: UInt8 = 0x2B            // '+'
    static let nack: UInt8 = 0x2D           // '-'
    /// Sent outside any packet to interrupt a running target ("Interrupts").
    static let interrupt: UInt8 = 0x03
    /// Bytes that must be escaped in data we send ("Overview": `#$}` and `*`).
    static let mustEscape: Set<UInt8> = [0x23, 0x24, 0x7D, 0x2A]

    /// Replies larger than this are refused: no reply this client asks for
    /// (2 KiB memory reads, register blocks, target.xml chunks) comes near it.
    public static let defaultLimit = 1 << 20

    /// The modulo-256 sum of `bytes`.
    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt8 {
        bytes.reduce(0) { $0 &+ $1 }
    }

    /// Frames `payload` as `$...#cs`, escaping the bytes that need it.
    public static func encode(_ payload: some Sequence<UInt8>) -> [UInt8] {
        var body: [UInt8] = []
        for byte in payload {
            if mustEscape.contains(byte) { body.append(escape); body.append(byte ^ escapeXor) } else { body.append(byte) }
        }
        let sum = checksum(body)
        return [start] + body + [end] + Array(hex(sum, width: 2).utf8)
    }

    /// Frames an ASCII command.
    public static func encode(_ text: String) -> [UInt8] { encode(Array(text.utf8)) }

    /// Undoes escapes and run-length encoding of a received packet body (the
    /// bytes between `$` and `#`), refusing results longer than `limit`.
    public static func decode(_ raw: some Collection<UInt8>, limit: Int = defaultLimit) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(min(raw.count, limit))
        var iterator = raw.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case escape:
                guard let next = iterator.next() else { throw GDBRemoteError.garbage("packet ends inside an escape") }
                out.append(next ^ escapeXor)
            case repeatMarker:
                guard let last = out.last else { throw GDBRemoteError.garbage("run-length marker with nothing to repeat") }
                guard let countByte = iterator.next() else { throw GDBRemoteError.garbage("packet ends inside a run-length marker") }
                let count = Int(countByte) - repeatBias
                // The count byte is printable ASCII; a count below 1 is meaningless.
                guard count >= 1, countByte < 0x7F else {
                    throw GDBRemoteError.garbage("bad run-length count byte 0x\(hex(countByte, width: 2))")
                }
                guard out.count + count <= limit else { throw GDBRemoteError.packetTooLarge(limit: limit) }
                out.append(contentsOf: repeatElement(last, count: count))
            default:
                out.append(byte)
            }
            guard out.count <= limit else { throw GDBRemoteError.packetTooLarge(limit: limit) }
        }
        return out
    }
}

/// One unit of what a peer sends.
enum PacketEvent: Equatable {
    case ack
    case nack
    /// A framed packet with a correct checksum; `body` is still escaped/RLE-encoded.
    case packet(body: [UInt8])
    /// A framed packet whose checksum did not match (ask for it again).
    case badChecksum
}

/// Splits a byte stream into `PacketEvent`s. Anything that is not an ack or a
/// packet is garbage: a GDB stub in all-stop mode sends nothing else.
struct PacketScanner {
    /// Bytes received; those before `start` are consumed.
    private var bytes: [UInt8] = []
    private var start = 0
    let limit: Int

    init(limit: Int = Packet.defaultLimit) { self.limit = limit }

    /// The bytes not consumed yet.
    var buffer: ArraySlice<UInt8> { bytes[start...] }

    mutating func append(_ more: [UInt8]) {
        // Consumed bytes are dropped in bulk, not one event at a time: a
        // flood of acks costs linear time, not quadratic.
        if start > 0 && start >= bytes.count / 2 {
            bytes.removeFirst(start)
            start = 0
        }
        bytes.append(contentsOf: more)
    }

    private mutating func consume(_ count: Int) {
        start += count
        if start == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            start = 0
        }
    }

    /// The next complete event, nil when more bytes are needed.
    mutating func next() throws -> PacketEvent? {
        let buffer = self.buffer
        guard let first = buffer.first else { return nil }
        switch first {
        case Packet.ack: consume(1); return .ack
        case Packet.nack: consume(1); return .nack
        case Packet.start: break
        default:
            throw GDBRemoteError.garbage("unexpected bytes '\(excerpt(buffer))'")
        }
        // The raw body may be up to `limit` bytes (escapes only make it longer
        // than the decoded form, RLE only shorter: decode checks the result).
        // Offsets below are from the packet's `$`.
        guard let endIndex = buffer.firstIndex(of: Packet.end).map({ $0 - start }) else {
            if buffer.count > limit + 1 { throw GDBRemoteError.packetTooLarge(limit: limit) }
            return nil
        }
        guard endIndex - 1 <= limit else { throw GDBRemoteError.packetTooLarge(limit: limit) }
        guard buffer.count >= endIndex + 3 else { return nil }
        let body = Array(buffer.dropFirst().prefix(endIndex - 1))
        if body.contains(Packet.start) {
            throw GDBRemoteError.garbage("'$' inside a packet: '\(excerpt(body))'")
        }
        let checksumStart = start + endIndex + 1
        guard let sent = hexValue(bytes[checksumStart], bytes[checksumStart + 1]) else {
            throw GDBRemoteError.garbage("checksum is not two hex digits: '\(excerpt(buffer.dropFirst(endIndex).prefix(3)))'")
        }
        consume(endIndex + 3)
        return Packet.checksum(body) == sent ? .packet(body: body) : .badChecksum
    }
}

/// The value of two ASCII hex digits, nil if either is not one.
func hexValue(_ high: UInt8, _ low: UInt8) -> UInt8? {
    guard let h = hexDigit(high), let l = hexDigit(low) else { return nil }
    return h << 4 | l
}

func hexDigit(_ c: UInt8) -> UInt8? {
    switch c {
    case 0x30...0x39: return c - 0x30
    case 0x61...0x66: return c - 0x61 + 10
    case 0x41...0x46: return c - 0x41 + 10
    default: return nil
    }
}
