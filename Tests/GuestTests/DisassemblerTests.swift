import XCTest
@testable import Guest

final class DisassemblerTests: XCTestCase {
    func testMissingCapstoneIsATypedError() {
        XCTAssertThrowsError(try CapstoneLibrary(soname: "libcapstone-swvmm-missing.so.0")) { error in
            guard case let .libraryUnavailable(library, reason)? = error as? DisassemblerError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(library, "libcapstone-swvmm-missing.so.0")
            XCTAssertFalse(reason.isEmpty)
            XCTAssertTrue("\(error)".contains("capstone (libcapstone4) is not installed"), "\(error)")
        }
    }

    func testKnownSequencesDecode() throws {
        let d = try Disassembler()
        // push rbp; mov rbp, rsp; mov eax, 0x50f; syscall; ret
        let code: [UInt8] = [0x55, 0x48, 0x89, 0xE5, 0xB8, 0x0F, 0x05, 0x00, 0x00, 0x0F, 0x05, 0xC3]
        let insns = d.disassemble(code, address: 0x1000, maxInstructions: 10)
        XCTAssertEqual(insns.map(\.mnemonic), ["push", "mov", "mov", "syscall", "ret"])
        XCTAssertEqual(insns.map(\.address), [0x1000, 0x1001, 0x1004, 0x1009, 0x100B])
        XCTAssertEqual(insns[1].operands, "rbp, rsp")
        XCTAssertEqual(insns[2].operands, "eax, 0x50f")
        XCTAssertEqual(insns[2].bytes, [0xB8, 0x0F, 0x05, 0x00, 0x00])
        XCTAssertEqual(insns.map(\.isSyscall), [false, false, false, true, false])
        XCTAssertEqual(d.disassemble(code, address: 0x1000, maxInstructions: 2).count, 2)
        XCTAssertEqual(d.disassemble([], address: 0, maxInstructions: 2), [])
    }

    func testFormattedListsBytesAndUndecodableTail() throws {
        let d = try Disassembler()
        // syscall; then 0x06 (push es: invalid in 64-bit mode)
        let text = d.formatted([0x0F, 0x05, 0x06, 0x90], address: 0xFFFF_FFFF_8100_0000, highlight: 0xFFFF_FFFF_8100_0000)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, text)
        XCTAssertTrue(lines[0].hasPrefix("=> 0xffffffff81000000: 0f 05"), text)
        XCTAssertTrue(lines[0].hasSuffix("syscall"), text)
        XCTAssertTrue(lines[1].contains("0xffffffff81000002: 06 90"), text)
        XCTAssertTrue(lines[1].contains("does not decode"), text)
    }

    func testSyscallFinderRespectsInstructionBoundaries() throws {
        let finder = SyscallSiteFinder(disassembler: try Disassembler())
        // mov eax, 0x50f: the bytes 0f 05 only inside an immediate.
        XCTAssertEqual(finder.sites(in: [0xB8, 0x0F, 0x05, 0x00, 0x00, 0xC3], startAddress: 0x1000), [])
        // mov eax, 0x50f; syscall; ret
        XCTAssertEqual(finder.sites(in: [0xB8, 0x0F, 0x05, 0x00, 0x00, 0x0F, 0x05, 0xC3], startAddress: 0x1000), [0x1005])
        // An undecodable byte is skipped and the sweep resynchronises.
        XCTAssertEqual(finder.sites(in: [0x06, 0x0F, 0x05, 0x0F, 0x05], startAddress: 0x2000, maxSites: 5), [0x2001, 0x2003])
        XCTAssertEqual(finder.sites(in: [0x0F, 0x05, 0x0F, 0x05], startAddress: 0x2000, maxSites: 1), [0x2000])
    }

    func testGuestFinderOnlyReportsUserExecutablePages() throws {
        let memory = SparsePhysicalMemory(size: 1 << 32)
        let tables = PageTableBuilder(memory: memory, fiveLevel: true)
        let base: UInt64 = 0x7FFF_F7FC_0000
        // Page 0: user, executable. 1: user, NX. 2: supervisor. 3: unmapped. 4: user, executable.
        try tables.map4K(base, to: 0x3_0000)
        try tables.map4K(base + 0x1000, to: 0x3_1000, flags: PTE.all | PTE.noExecute)
        try tables.map4K(base + 0x2000, to: 0x3_2000, flags: PTE.present)
        try tables.map4K(base + 0x4000, to: 0x3_8000)
        let code: [UInt8] = [0x90, 0xB8, 0x0F, 0x05, 0x00, 0x00, 0x0F, 0x05, 0xC3] // syscall at +6
        for physical: UInt64 in [0x3_0000, 0x3_1000, 0x3_2000, 0x3_8000] {
            try memory.writeBytes(physical: physical + 0x100, code)
        }
        let view = GuestView(memory: memory, context: tables.context)
        let finder = SyscallSiteFinder(disassembler: try Disassembler())
        let sites = try finder.sites(in: view, start: base, length: 0x5000)
        XCTAssertEqual(sites, [SyscallSite(virtual: base + 0x106, physical: 0x3_0106),
                               SyscallSite(virtual: base + 0x4106, physical: 0x3_8106)])
        XCTAssertThrowsError(try finder.sites(in: view, start: base, length: 0x5000, maxBytes: 0x1000))
    }
}
