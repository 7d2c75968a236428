import XCTest
@testable import VMM

final class GDTTests: XCTestCase {
    func testKnownDescriptorEncodings() {
        // 64-bit code, execute/read, not accessed: limit 0xFFFFF, base 0, P=1 DPL=0 S=1 type=0xA, G=1 L=1 D=0.
        // Bytes by hand from SDM Vol. 3A Fig. 3-8: 0x00 | (G L D AVL = 1010, limit 19:16 = F) | (P DPL S = 1001, type A) | base 0 | FFFF.
        let code = Segment(limit: 0xF_FFFF, type: 0xA, present: true, s: true, l: true, g: true)
        XCTAssertEqual(code.descriptor, 0x00AF_9A00_0000_FFFF)
        // Flat 32-bit data, read/write: G=1 D/B=1 -> 0xC, P DPL S = 1001, type 2.
        let data = Segment(limit: 0xF_FFFF, type: 0x2, present: true, db: true, s: true, g: true)
        XCTAssertEqual(data.descriptor, 0x00CF_9200_0000_FFFF)
        // The boot GDT uses the accessed variants.
        XCTAssertEqual(GDT.entries, [0, 0, 0x00AF_9B00_0000_FFFF, 0x00CF_9300_0000_FFFF])
        XCTAssertEqual(GDT.limit, 31)
    }

    func testBaseAndLimitSplitAcrossTheDescriptor() {
        let segment = Segment(base: 0x1234_5678, limit: 0xA_BCDE, type: 0x3, present: true, dpl: 3, s: true, avl: true)
        // base 31:24 = 0x12 at bits 63:56; base 23:0 = 0x345678 at 39:16; limit 19:16 = 0xA at 51:48; AVL bit 52.
        XCTAssertEqual(segment.descriptor, 0x121A_F334_5678_BCDE)
    }

    func testDescriptorsDecodeBackToTheSameFields() {
        let samples = [
            GDT.code, GDT.data,
            Segment(base: 0xDEAD_BEEF, limit: 0x1_2345, selector: 0x28, type: 0x9, present: true, dpl: 2, db: true, avl: true),
            Segment(limit: 0xFFFF, selector: 0x08, type: 0xB, present: false, s: false),
        ]
        for sample in samples {
            XCTAssertEqual(Segment(descriptor: sample.descriptor, selector: sample.selector), sample)
        }
    }

    func testByteLimitExpandsGranularity() {
        XCTAssertEqual(GDT.code.byteLimit, 0xFFFF_FFFF)
        XCTAssertEqual(Segment(limit: 0xFFFF).byteLimit, 0xFFFF)
    }

    func testWrittenGDTMatchesEntries() throws {
        let memory = try GuestMemory(size: 2 << 20)
        try GDT.write(into: memory)
        for (index, entry) in GDT.entries.enumerated() {
            let value: UInt64 = try memory.readInteger(physical: Layout.gdtAddress + UInt64(index * 8))
            XCTAssertEqual(value, entry)
        }
        let selectorCode: UInt64 = try memory.readInteger(physical: Layout.gdtAddress + UInt64(GDT.codeSelector))
        XCTAssertEqual(Segment(descriptor: selectorCode, selector: GDT.codeSelector), GDT.code)
        XCTAssertLessThanOrEqual(Layout.gdtAddress + UInt64(GDT.limit) + 1, Layout.idtAddress)
    }
}
