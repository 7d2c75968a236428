import XCTest
@testable import Guest

final class PageWalkerTests: XCTestCase {
    let memory = SparsePhysicalMemory(size: 1 << 40)
    func walker() -> PageWalker { PageWalker(memory: memory) }

    func testFourLevelTranslation4KiB() throws {
        let tables = PageTableBuilder(memory: memory, fiveLevel: false)
        try tables.map4K(0x7FFF_1234_5000, to: 0xABC_D000)
        let t = try walker().translate(0x7FFF_1234_5678, in: tables.context)
        XCTAssertEqual(t.physical, 0xABC_D678)
        XCTAssertEqual(t.pageSize, .size4KiB)
        XCTAssertEqual(t.leafLevel, .pageTable)
        XCTAssertEqual(t.permissions, PagePermissions(present: true, writable: true, user: true, executable: true))
        XCTAssertEqual(t.bytesToPageEnd, 0x1000 - 0x678)
        // A neighbouring page that is not mapped.
        XCTAssertThrowsError(try walker().translate(0x7FFF_1234_6000, in: tables.context))
    }

    func testFiveLevelTranslationUsesBitsAbove47() throws {
        let tables = PageTableBuilder(memory: memory, fiveLevel: true)
        // Two addresses that differ only in the PML5 index (bits 48..56).
        try tables.map4K(0x0000_7000_0000_1000, to: 0x11_1000)
        try tables.map4K(0x00AB_7000_0000_1000, to: 0x22_2000)
        XCTAssertEqual(try walker().translate(0x0000_7000_0000_1234, in: tables.context).physical, 0x11_1234)
        XCTAssertEqual(try walker().translate(0x00AB_7000_0000_1234, in: tables.context).physical, 0x22_2234)
        // Kernel half: bits 63..56 all ones is canonical with LA57.
        try tables.map4K(0xFF11_0000_0000_0000, to: 0x33_3000)
        XCTAssertEqual(try walker().translate(0xFF11_0000_0000_0008, in: tables.context).physical, 0x33_3008)
        // Not canonical for 4-level paging.
        let four = PagingContext(root: tables.root, fiveLevel: false)
        XCTAssertThrowsError(try walker().translate(0x00AB_7000_0000_1234, in: four)) {
            XCTAssertEqual($0 as? PageWalkError, .nonCanonical(virtual: 0x00AB_7000_0000_1234, bits: 48))
        }
    }

    func testTwoMiBPageWithOffsetIgnoresPATBit() throws {
        let tables = PageTableBuilder(memory: memory, fiveLevel: false)
        try tables.map2M(0x4060_0000, to: 0x8_0020_0000, flags: PTE.all | PTE.pat)
        let t = try walker().translate(0x4060_0000 + 0x1_2345, in: tables.context)
        XCTAssertEqual(t.physical, 0x8_0020_0000 + 0x1_2345)
        XCTAssertEqual(t.pageSize, .size2MiB)
        XCTAssertEqual(t.leafLevel, .pageDirectory)
        XCTAssertEqual(t.bytesToPageEnd, 0x20_0000 - 0x1_2345)
    }

    func testOneGiBPageWithOffsetIgnoresPATBit() throws {
        let tables = PageTableBuilder(memory: memory, fiveLevel: true)
        try tables.map1G(0xC000_0000, to: 0x1_4000_0000, flags: PTE.all | PTE.pat)
        let t = try walker().translate(0xC000_0000 + 0x1234_5678, in: tables.context)
        XCTAssertEqual(t.physical, 0x1_4000_0000 + 0x1234_5678)
        XCTAssertEqual(t.pageSize, .size1GiB)
        XCTAssertEqual(t.leafLevel, .pageDirectoryPointerTable)
    }

    func testHighEntryBitsAreNotAddressBits() throws {
        let tables = PageTableBuilder(memory: memory, fiveLevel: false)
        // The highest 52-bit physical page, with XD and protection-key bits set.
        try tables.map4K(0x40_0000, to: 0xF_FFFF_FFFF_F000, flags: PTE.all | PTE.noExecute | PTE.protectionKey)
        let t = try walker().translate(0x40_0010, in: tables.context)
        XCTAssertEqual(t.physical, 0xF_FFFF_FFFF_F010)
        XCTAssertFalse(t.permissions.executable)
    }

    func testPCIDAndFlagBitsOfCR3AreIgnored() throws {
        let tables = PageTableBuilder(memory: memory, fiveLevel: false)
        try tables.map4K(0x40_0000, to: 0x5000)
        let cr3 = tables.root | 0x5A5 | (1 << 63)
        let efer: UInt64 = (1 << 10) | (1 << 11) | (1 << 8)
        let context = try PagingContext(cr3: cr3, cr4: 1 << 5, efer: efer)
        XCTAssertEqual(context.root, tables.root)
        XCTAssertFalse(context.fiveLevel)
        XCTAssertEqual(try walker().translate(0x40_0123, in: context).physical, 0x5123)
        // CR4.LA57 selects 5 levels.
        XCTAssertTrue(try PagingContext(cr3: cr3, cr4: (1 << 5) | (1 << 12), efer: efer).fiveLevel)
        // EFER.LMA clear: not long mode.
        XCTAssertThrowsError(try PagingContext(cr3: cr3, cr4: 1 << 5, efer: 1 << 8)) {
            XCTAssertEqual($0 as? PageWalkError, .notLongMode(cr4: 1 << 5, efer: 1 << 8))
        }
    }

    func testNotPresentAtEachLevelNamesTheLevel() throws {
        let va: UInt64 = 0x0012_3456_7890_A000
        for level in 1 ... 5 {
            let memory = SparsePhysicalMemory(size: 1 << 32)
            let tables = PageTableBuilder(memory: memory, fiveLevel: true)
            try tables.map4K(va, to: 0x7000)
            XCTAssertEqual(try PageWalker(memory: memory).translate(va, in: tables.context).physical, 0x7000)
            let entryAddress = try tables.entryAddress(va, level: level)
            try tables.modify(va, level: level, clear: PTE.present)
            let entry: UInt64 = try memory.readInteger(physical: entryAddress)
            XCTAssertThrowsError(try PageWalker(memory: memory).translate(va, in: tables.context)) { error in
                XCTAssertEqual(error as? PageWalkError,
                               .notPresent(virtual: va, level: PageTableLevel(rawValue: level)!,
                                           entryAddress: entryAddress, entry: entry), "level \(level)")
            }
        }
    }

    func testNonCanonicalAddressesAreRejected() throws {
        let four = PagingContext(root: 0x1000, fiveLevel: false)
        let five = PagingContext(root: 0x1000, fiveLevel: true)
        for va: UInt64 in [0x0000_8000_0000_0000, 0xFFFF_7FFF_FFFF_F000, 0x8000_0000_0000_0000] {
            XCTAssertThrowsError(try walker().translate(va, in: four)) {
                XCTAssertEqual($0 as? PageWalkError, .nonCanonical(virtual: va, bits: 48))
            }
        }
        for va: UInt64 in [0x0100_0000_0000_0000, 0xFEFF_FFFF_FFFF_F000] {
            XCTAssertThrowsError(try walker().translate(va, in: five)) {
                XCTAssertEqual($0 as? PageWalkError, .nonCanonical(virtual: va, bits: 57))
            }
        }
        XCTAssertTrue(four.isCanonical(0xFFFF_8000_0000_0000))
        XCTAssertTrue(five.isCanonical(0x0000_8000_0000_0000))
    }

    func testUserPageUnderSupervisorDirectoryIsNotUser() throws {
        let tables = PageTableBuilder(memory: memory, fiveLevel: false)
        try tables.map4K(0x40_0000, to: 0x5000)
        try tables.modify(0x40_0000, level: 2, clear: PTE.user)
        let p = try walker().translate(0x40_0000, in: tables.context).permissions
        XCTAssertFalse(p.user)
        XCTAssertTrue(p.writable)
        XCTAssertTrue(p.executable)
    }

    func testReadOnlyDirectoryMakesPageReadOnly() throws {
        let tables = PageTableBuilder(memory: memory, fiveLevel: false)
        try tables.map4K(0x40_0000, to: 0x5000)
        try tables.modify(0x40_0000, level: 3, clear: PTE.writable)
        let p = try walker().translate(0x40_0000, in: tables.context).permissions
        XCTAssertFalse(p.writable)
        XCTAssertTrue(p.user)
    }

    func testNoExecuteAtAnyLevelMakesPageNotExecutable() throws {
        for level in 1 ... 4 {
            let memory = SparsePhysicalMemory(size: 1 << 32)
            let tables = PageTableBuilder(memory: memory, fiveLevel: false)
            try tables.map4K(0x40_0000, to: 0x5000)
            try tables.modify(0x40_0000, level: level, set: PTE.noExecute)
            let t = try PageWalker(memory: memory).translate(0x40_0000, in: tables.context)
            XCTAssertFalse(t.permissions.executable, "XD at level \(level)")
            XCTAssertEqual(t.physical, 0x5000)
            // With EFER.NXE clear the XD bit has no effect.
            let noNX = PagingContext(root: tables.root, fiveLevel: false, noExecuteEnabled: false)
            XCTAssertTrue(try PageWalker(memory: memory).translate(0x40_0000, in: noNX).permissions.executable)
        }
    }

    func testPageSizeBitInPML4IsReserved() throws {
        let tables = PageTableBuilder(memory: memory, fiveLevel: false)
        try tables.map4K(0x40_0000, to: 0x5000)
        try tables.modify(0x40_0000, level: 4, set: PTE.pageSize)
        XCTAssertThrowsError(try walker().translate(0x40_0000, in: tables.context)) {
            guard case .reservedPageSize(_, .pml4, _, _)? = $0 as? PageWalkError else {
                return XCTFail("unexpected \($0)")
            }
        }
    }

    func testEntryOutsideGuestRAMIsATypedError() throws {
        let small = SparsePhysicalMemory(size: 0x10_0000)
        let context = PagingContext(root: 0x20_0000, fiveLevel: false)
        XCTAssertThrowsError(try PageWalker(memory: small).translate(0x1000, in: context)) {
            guard case .unreadableEntry(0x1000, .pml4, 0x20_0000, _)? = $0 as? PageWalkError else {
                return XCTFail("unexpected \($0)")
            }
        }
    }

    func testSelfReferencingTableTerminates() throws {
        // Recursive mapping: PML4 slot 0x1FE points back at the PML4 itself.
        let tables = PageTableBuilder(memory: memory, fiveLevel: false)
        try memory.writeInteger(physical: tables.root + 8 * 0x1FE, tables.root | PTE.present | PTE.writable)
        // Index 0x1FE at all four levels: the walk reads the root four times and
        // lands on the root page itself.
        let va: UInt64 = 0xFFFF_FF7F_BFDF_E000
        let t = try walker().translate(va + 0x10, in: tables.context)
        XCTAssertEqual(t.physical, tables.root + 0x10)
        XCTAssertFalse(t.permissions.user)
    }

    func testKPTIUserRoot() {
        XCTAssertEqual(kptiUserRoot(0x1234_6000 | 0x3), 0x1234_7000)
        XCTAssertEqual(kptiUserRoot(kptiUserRoot(0x1234_6000)), 0x1234_6000)
        XCTAssertTrue(sameAddressSpace(0x1234_6005, 0x1234_6000, allowKPTI: false))
        XCTAssertTrue(sameAddressSpace(0x1234_7001, 0x1234_6000, allowKPTI: true))
        XCTAssertFalse(sameAddressSpace(0x1234_7001, 0x1234_6000, allowKPTI: false))
        let context = PagingContext(root: 0x1234_6000, fiveLevel: true)
        XCTAssertEqual(context.kptiUser.root, 0x1234_7000)
        XCTAssertTrue(context.kptiUser.fiveLevel)
    }
}
