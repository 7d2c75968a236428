import Guest

/// Little-endian reads from an image held in memory, bounds-checked.
///
/// Image headers are untrusted input: every read names the field it is for,
/// so a short file fails with a message saying which field ran off the end.
struct ByteReader {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func integer<T: FixedWidthInteger>(at offset: Int, as type: T.Type = T.self, field: String) throws -> T {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= bytes.count - size else {
            throw BootError.truncated(what: field, needed: offset + size, actual: bytes.count)
        }
        return T(littleEndianBytes: bytes[offset ..< offset + size])
    }

    /// The NUL-terminated string at `offset` (at most `limit` bytes), or nil if it is not terminated.
    func cString(at offset: Int, limit: Int = 256) -> String? {
        guard offset >= 0, offset < bytes.count else { return nil }
        let end = min(bytes.count, offset + limit)
        guard let nul = bytes[offset..<end].firstIndex(of: 0) else { return nil }
        return String(decoding: bytes[offset..<nul], as: UTF8.self)
    }
}

/// Little-endian writes into a fixed-size structure being built (zero page, MP table).
struct ByteWriter {
    private(set) var bytes: [UInt8]

    init(count: Int) { bytes = [UInt8](repeating: 0, count: count) }

    /// Writes `value` at `offset`; callers pass offsets of fixed layouts inside `bytes`.
    mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        bytes.replaceSubrange(offset ..< offset + MemoryLayout<T>.size, with: value.littleEndianBytes())
    }

    mutating func put<C: Collection>(bytes source: C, at offset: Int) where C.Element == UInt8 {
        bytes.replaceSubrange(offset..<(offset + source.count), with: source)
    }
}

/// The byte that makes `bytes` (with the checksum byte still 0) sum to 0 mod
/// 256: the checksum of MP spec 1.4 tables (§4.1, §4.2) and ACPI tables (ACPI 6.4 §5.2.6).
func zeroSumChecksum(_ bytes: ArraySlice<UInt8>) -> UInt8 {
    0 &- bytes.reduce(0, &+)
}
