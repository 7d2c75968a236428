import XCTest
@testable import VMM

final class E820Tests: XCTestCase {
    private func map(_ size: UInt64) throws -> [E820Entry] {
        try E820Map.build(memoryRegions: GuestMemory.layout(size: size))
    }

    func testSmallGuest() throws {
        XCTAssertEqual(try map(512 << 20), [
            E820Entry(address: 0, size: 0x9_FC00, type: .ram),
            E820Entry(address: 0x9_FC00, size: 0x6_0400, type: .reserved),
            E820Entry(address: 0x10_0000, size: (512 << 20) - 0x10_0000, type: .ram),
        ])
    }

    func testThreeGiBGuestStopsAtTheMMIOHole() throws {
        let entries = try map(3 << 30)
        XCTAssertEqual(entries.count, 3)
        XCTAssertEqual(entries[2], E820Entry(address: 0x10_0000, size: 0xC000_0000 - 0x10_0000, type: .ram))
    }

    func testFiveGiBGuestHasRAMAboveFourGiB() throws {
        let entries = try map(5 << 30)
        XCTAssertEqual(entries.count, 4)
        XCTAssertEqual(entries[2].end, 0xC000_0000)
        XCTAssertEqual(entries[3], E820Entry(address: 0x1_0000_0000, size: (5 << 30) - 0xC000_0000, type: .ram))
        let ram = entries.filter { $0.type == .ram }.reduce(0) { $0 + $1.size }
        XCTAssertEqual(ram, (5 << 30) - (0x10_0000 - 0x9_FC00), "all RAM but the EBDA..1MiB hole is reported")
        for (a, b) in zip(entries, entries.dropFirst()) { XCTAssertLessThanOrEqual(a.end, b.address) }
    }

    func testTooSmallGuestIsAnError() {
        XCTAssertThrowsError(try map(1 << 20)) { error in
            guard case BootError.memoryTooSmall? = error as? BootError else { return XCTFail("\(error)") }
        }
    }

    func testEncoding() {
        let entry = E820Entry(address: 0x1122_3344_5566_7788, size: 0x10, type: .reserved)
        XCTAssertEqual(entry.encoded, [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
                                       0x10, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0])
    }
}
