/// Little-endian encoding of integers: the one place bytes become numbers and
/// back (x86 and the formats swvmm reads are little-endian throughout).
extension FixedWidthInteger {
    /// The integer whose little-endian bytes are the first `bitWidth / 8` of
    /// `bytes`; bytes missing at the end count as zero.
    public init(littleEndianBytes bytes: some Collection<UInt8>) {
        var value: Self = 0
        for (index, byte) in bytes.prefix(Self.bitWidth / 8).enumerated() { value |= Self(byte) << (8 * index) }
        self = value
    }

    /// The first `count` little-endian bytes of the value (zero past its width).
    public func littleEndianBytes(count: Int = Self.bitWidth / 8) -> [UInt8] {
        (0 ..< Swift.max(0, count)).map { $0 < Self.bitWidth / 8 ? UInt8(truncatingIfNeeded: self >> (8 * $0)) : 0 }
    }
}
