import Guest
import Shadow

/// Reads QEMU's `info registers` monitor text (the only QEMU-specific source
/// of the IDTR a GDB stub offers: the x86 target description has no IDTR).
///
/// QEMU prints one block per CPU, `CPU#N` first with `-a`, and a line
/// `IDT=     <base hex> <limit hex>` in each (target/i386/cpu-dump.c).
enum MonitorRegisters {
    /// Longest monitor text parsed; QEMU's dump is a few KiB per CPU.
    static let maximumText = 1 << 20

    /// The IDTR of CPU `index` in `text` (the output of `info registers -a`),
    /// or of the only CPU when the text has no `CPU#` headers. Nil when absent
    /// or malformed.
    static func idtRegister(in text: String, cpuIndex index: Int) -> DescriptorTableRegister? {
        guard text.utf8.count <= maximumText else { return nil }
        var current: Int? = nil
        var sawHeader = false
        // QEMU ends lines with "\r\n", a single Character in Swift: split the bytes.
        for bytes in text.utf8.split(whereSeparator: { $0 == 10 || $0 == 13 }) {
            let line = String(decoding: bytes, as: UTF8.self)
            let trimmed = line.drop(while: { $0 == " " })
            if trimmed.hasPrefix("CPU#") {
                sawHeader = true
                let digits = trimmed.dropFirst(4).prefix(while: { $0.isNumber })
                current = digits.count <= 6 ? Int(digits) : nil
                continue
            }
            guard trimmed.hasPrefix("IDT="), !sawHeader || current == index else { continue }
            let fields = trimmed.dropFirst(4).split(separator: " ")
            guard fields.count >= 2, fields[0].count <= 16, fields[1].count <= 8,
                  let base = UInt64(fields[0], radix: 16),
                  let limit = UInt32(fields[1], radix: 16), limit <= UInt32(UInt16.max) else { return nil }
            return DescriptorTableRegister(base: base, limit: UInt16(limit))
        }
        return nil
    }
}
