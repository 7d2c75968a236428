import XCTest
@testable import VMM

final class MPTableTests: XCTestCase {
    private func sum(_ bytes: ArraySlice<UInt8>) -> UInt8 { bytes.reduce(0, &+) }
    private func u16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
    private func u32(_ b: [UInt8], _ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * $1) } }

    func testChecksumsAndCounts() throws {
        for cpus in [1, 2, 4, MPTable.maxCPUCount] {
            let table = try MPTable.build(cpuCount: cpus)
            XCTAssertEqual(Array(table[0..<4]), Array("_MP_".utf8))
            XCTAssertEqual(sum(table[0..<16]), 0, "floating pointer checksum, \(cpus) CPUs")
            XCTAssertEqual(u32(table, 4), UInt32(Layout.ebdaStart + 16), "points at the config table")
            XCTAssertEqual(table[8], 1)
            XCTAssertEqual(table[9], 4)
            XCTAssertEqual(Array(table[16..<20]), Array("PCMP".utf8))
            let length = u16(table, 16 + 4)
            XCTAssertEqual(16 + length, table.count)
            XCTAssertEqual(sum(table[16..<(16 + length)]), 0, "config table checksum, \(cpus) CPUs")
            XCTAssertEqual(u32(table, 16 + 36), UInt32(Layout.localAPICAddress))

            // Walk the entries by their type-defined sizes and count them.
            var offset = 16 + 44, count = 0, processors: [(id: UInt8, flags: UInt8)] = []
            var ioAPIC: (id: UInt8, version: UInt8, address: UInt32)?
            var irqToPin: [UInt8: UInt8] = [:], lints: [(type: UInt8, pin: UInt8)] = []
            while offset < table.count {
                switch table[offset] {
                case 0: processors.append((table[offset + 1], table[offset + 3])); offset += 20
                case 1: XCTAssertEqual(Array(table[(offset + 2)..<(offset + 8)]), Array("ISA   ".utf8)); offset += 8
                case 2: ioAPIC = (table[offset + 1], table[offset + 2], u32(table, offset + 4)); offset += 8
                case 3: irqToPin[table[offset + 5]] = table[offset + 7]; offset += 8
                case 4: lints.append((table[offset + 1], table[offset + 7])); offset += 8
                default: return XCTFail("unknown entry type \(table[offset]) at \(offset)")
                }
                count += 1
            }
            XCTAssertEqual(offset, table.count)
            XCTAssertEqual(count, u16(table, 16 + 34), "entry count in the header")
            XCTAssertEqual(processors.map(\.id), (0..<cpus).map { UInt8($0) })
            XCTAssertEqual(processors.map(\.flags), [3] + Array(repeating: 1, count: cpus - 1))
            XCTAssertEqual(ioAPIC?.id, UInt8(cpus))
            XCTAssertEqual(ioAPIC?.version, 0x11)
            XCTAssertEqual(ioAPIC?.address, UInt32(Layout.ioAPICAddress))
            // KVM's default GSI routing: ISA IRQ n -> IOAPIC pin n, the timer included.
            for irq: UInt8 in 0...15 { XCTAssertEqual(irqToPin[irq], irq, "IRQ \(irq)") }
            XCTAssertEqual(Set(irqToPin.values).count, irqToPin.count, "no pin used twice")
            XCTAssertEqual(lints.map(\.type), [3, 1])
            XCTAssertEqual(lints.map(\.pin), [0, 1])
            XCTAssertLessThanOrEqual(Layout.ebdaStart + UInt64(table.count), Layout.conventionalMemoryEnd)
        }
    }

    func testTooManyCPUs() {
        XCTAssertThrowsError(try MPTable.build(cpuCount: MPTable.maxCPUCount + 1)) { error in
            guard case BootError.tooManyCPUs? = error as? BootError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try MPTable.build(cpuCount: 0))
    }
}
