import XCTest
@testable import Guest

final class GuestViewTests: XCTestCase {
    let memory = SparsePhysicalMemory(size: 1 << 32)
    var tables: PageTableBuilder!
    var view: GuestView!

    override func setUpWithError() throws {
        tables = PageTableBuilder(memory: memory, fiveLevel: false)
        // Two adjacent virtual pages backed by non-adjacent physical pages,
        // in reverse order, so a wrong translation shows.
        try tables.map4K(0x40_1000, to: 0x9000)
        try tables.map4K(0x40_2000, to: 0x5000)
        view = GuestView(memory: memory, context: tables.context)
    }

    func testReadCrossesIntoDifferentlyMappedPage() throws {
        try memory.writeBytes(physical: 0x9FFC, [1, 2, 3, 4])
        try memory.writeBytes(physical: 0x5000, [5, 6, 7, 8])
        try memory.writeBytes(physical: 0xA000, [0xEE, 0xEE, 0xEE, 0xEE]) // physically next: must not be read
        XCTAssertEqual(try view.read(virtual: 0x40_1FFC, count: 8), [1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(try view.readInteger(virtual: 0x40_1FFC, as: UInt64.self), 0x0807_0605_0403_0201)
    }

    func testReadIntoUnmappedPageFails() throws {
        XCTAssertThrowsError(try view.read(virtual: 0x40_2FFE, count: 4)) {
            guard case .notPresent(0x40_3000, .pageTable, _, _)? = $0 as? PageWalkError else {
                return XCTFail("unexpected \($0)")
            }
        }
    }

    func testReadCStringStopsAtTerminatorBeforeUnmappedPage() throws {
        // "hello" spans the boundary; its NUL is the last byte before the unmapped page.
        try memory.writeBytes(physical: 0x9FFE, Array("he".utf8))
        try memory.writeBytes(physical: 0x5FFC, Array("llo".utf8) + [0])
        try memory.writeBytes(physical: 0x5000, [UInt8](repeating: 0x41, count: 0xFFC))
        let text = try view.readCString(virtual: 0x40_1FFE, max: 0x2000)
        XCTAssertEqual(text, "he" + String(repeating: "A", count: 0xFFC) + "llo")
        try memory.writeBytes(physical: 0x9800, Array("short".utf8) + [0])
        XCTAssertEqual(try view.readCString(virtual: 0x40_1800, max: 5), "short")
        XCTAssertThrowsError(try view.readCString(virtual: 0x40_1800, max: 4)) {
            XCTAssertEqual($0 as? GuestViewError, .unterminatedString(virtual: 0x40_1800, max: 4))
        }
    }

    func testWriteLandsInTheRightPhysicalPages() throws {
        try view.write(virtual: 0x40_1FFE, [0xA1, 0xA2, 0xA3, 0xA4])
        XCTAssertEqual(try memory.readBytes(physical: 0x9FFE, count: 2), [0xA1, 0xA2])
        XCTAssertEqual(try memory.readBytes(physical: 0x5000, count: 2), [0xA3, 0xA4])
        XCTAssertEqual(try memory.readBytes(physical: 0xA000, count: 2), [0, 0])
        try view.writeInteger(virtual: 0x40_2010, UInt32(0xDEAD_BEEF))
        XCTAssertEqual(try memory.readInteger(physical: 0x5010, as: UInt32.self), 0xDEAD_BEEF)
    }

    func testWriteRefusedThroughReadOnlyPTE() throws {
        // A copy-on-write page looks exactly like this: present, R/W clear.
        try tables.modify(0x40_2000, level: 1, clear: PTE.writable)
        XCTAssertThrowsError(try view.write(virtual: 0x40_2000, [1])) {
            guard case .notWritable(0x40_2000, _)? = $0 as? GuestViewError else { return XCTFail("unexpected \($0)") }
        }
        XCTAssertEqual(try memory.readBytes(physical: 0x5000, count: 1), [0])
    }

    func testWriteRefusedThroughReadOnlyDirectory() throws {
        try tables.modify(0x40_2000, level: 2, clear: PTE.writable)
        XCTAssertThrowsError(try view.write(virtual: 0x40_1000, [1])) {
            guard case .notWritable? = $0 as? GuestViewError else { return XCTFail("unexpected \($0)") }
        }
    }

    func testWriteRefusedThroughSupervisorEntry() throws {
        try tables.modify(0x40_1000, level: 1, clear: PTE.user)
        XCTAssertThrowsError(try view.write(virtual: 0x40_1000, [1])) {
            guard case .notUser(0x40_1000, _)? = $0 as? GuestViewError else { return XCTFail("unexpected \($0)") }
        }
        // Reading a supervisor page is allowed (the walker reports, it does not enforce).
        XCTAssertEqual(try view.read(virtual: 0x40_1000, count: 1), [0])
    }

    func testWriteRefusedThroughNotPresentEntry() throws {
        XCTAssertThrowsError(try view.write(virtual: 0x40_3000, [1])) {
            XCTAssertNotNil($0 as? PageWalkError)
        }
    }

    func testRefusedWriteChangesNothing() throws {
        // First page writable, second read-only: nothing may be written.
        try tables.modify(0x40_2000, level: 1, clear: PTE.writable)
        XCTAssertThrowsError(try view.write(virtual: 0x40_1FFE, [1, 2, 3, 4]))
        XCTAssertEqual(try memory.readBytes(physical: 0x9FFE, count: 2), [0, 0])
    }

    func testLengthsAreBounded() throws {
        XCTAssertThrowsError(try view.read(virtual: 0x40_1000, count: GuestView.maximumTransfer + 1)) {
            guard case .transferTooLarge? = $0 as? GuestViewError else { return XCTFail("unexpected \($0)") }
        }
        XCTAssertThrowsError(try view.read(virtual: 0x40_1000, count: -1))
        XCTAssertThrowsError(try view.read(virtual: UInt64.max - 2, count: 8)) {
            XCTAssertEqual($0 as? GuestViewError, .addressOverflow(virtual: UInt64.max - 2, count: 8))
        }
        XCTAssertThrowsError(try view.readCString(virtual: 0x40_1000, max: Int.max))
        XCTAssertEqual(try view.read(virtual: 0x40_1000, count: 0), [])
    }

    func testLargePageReadAndWrite() throws {
        try tables.map2M(0x60_0000, to: 0x20_0000)
        try view.write(virtual: 0x60_0000 + 0x1_2FFF, [7, 8])
        XCTAssertEqual(try memory.readBytes(physical: 0x21_2FFF, count: 2), [7, 8])
        XCTAssertEqual(try view.read(virtual: 0x60_0000 + 0x1_2FFF, count: 2), [7, 8])
    }
}
