/// Lower-case hexadecimal digits of `value`, without a prefix, zero-padded
/// to `width` digits: the one hex formatter of swvmm's messages and reports.
public func hex<T: BinaryInteger>(_ value: T, width: Int = 0) -> String {
    let digits = String(value, radix: 16)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}

extension BinaryInteger {
    /// `0x`-prefixed lower-case hexadecimal, for addresses in messages.
    public var guestHex: String { "0x" + hex(self) }
}
