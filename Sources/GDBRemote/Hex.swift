import Guest

/// Hex text <-> bytes, as the protocol writes memory and registers.
enum Hex {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var text = ""
        for byte in bytes { text += hex(byte, width: 2) }
        return text
    }

    /// Decodes pairs of hex digits; nil on odd length or a non-hex byte.
    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 2)
        var iterator = text.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let value = hexValue(high, low) else { return nil }
            out.append(value)
        }
        return out
    }
}
