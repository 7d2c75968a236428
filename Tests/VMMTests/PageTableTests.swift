import XCTest
import Guest
@testable import VMM

final class PageTableTests: XCTestCase {
    /// A 4-level walk written from SDM Vol. 3A §4.5, independent of PageTables' own code.
    private func translate(_ virtual: UInt64, root: UInt64, memory: PhysicalMemory) throws -> UInt64? {
        let mask: UInt64 = 0x000F_FFFF_FFFF_F000
        let pml4e: UInt64 = try memory.readInteger(physical: (root & mask) + ((virtual >> 39) & 0x1FF) * 8)
        guard pml4e & 1 != 0 else { return nil }
        let pdpte: UInt64 = try memory.readInteger(physical: (pml4e & mask) + ((virtual >> 30) & 0x1FF) * 8)
        guard pdpte & 1 != 0 else { return nil }
        if pdpte & 0x80 != 0 { return (pdpte & 0x000F_FFFF_C000_0000) | (virtual & 0x3FFF_FFFF) }
        let pde: UInt64 = try memory.readInteger(physical: (pdpte & mask) + ((virtual >> 21) & 0x1FF) * 8)
        guard pde & 1 != 0 else { return nil }
        if pde & 0x80 != 0 { return (pde & 0x000F_FFFF_FFE0_0000) | (virtual & 0x1F_FFFF) }
        let pte: UInt64 = try memory.readInteger(physical: (pde & mask) + ((virtual >> 12) & 0x1FF) * 8)
        guard pte & 1 != 0 else { return nil }
        return (pte & mask) | (virtual & 0xFFF)
    }

    func testIdentityMapOfFirstFourGiB() throws {
        let memory = try GuestMemory(size: 4 << 20)
        let root = try PageTables.write(into: memory)
        XCTAssertEqual(root, Layout.pageTableRootAddress)
        for address: UInt64 in [0, 0x7000, 0x10_0000, 0x100_0200, 0x3FFF_FFFF, 0x4000_0000, 0xBFFF_F123,
                                0xFEE0_0000, 0xFFFF_FFFF] {
            XCTAssertEqual(try translate(address, root: root, memory: memory), address, "0x\(String(address, radix: 16))")
        }
        XCTAssertNil(try translate(0x1_0000_0000, root: root, memory: memory), "4 GiB and up is not mapped")
        XCTAssertNil(try translate(0xFFFF_FFFF_8100_0000, root: root, memory: memory))
    }

    func testEntriesArePresentWritableSupervisorLargePages() throws {
        let memory = try GuestMemory(size: 4 << 20)
        try PageTables.write(into: memory)
        let pde: UInt64 = try memory.readInteger(physical: PageTables.directory(1) + 3 * 8)
        XCTAssertEqual(pde, 0x4060_0000 | 0x83)  // 1 GiB + 3 x 2 MiB, P|RW|PS
        XCTAssertEqual(pde & X86Paging.userBit, 0)
        XCTAssertLessThanOrEqual(PageTables.end, Layout.commandLineAddress)
        XCTAssertGreaterThanOrEqual(PageTables.root, Layout.bootParamsAddress + 0x1000)
    }
}
