import XCTest
import Guest
@testable import Shadow

/// The hand-assembled stub decodes to the listing in ShadowStub's doc
/// comment, with SYS and TRAP where the executor expects them; IDT gates
/// decode per the SDM; the state file round-trips.
final class ShadowStubTests: XCTestCase {
    func testStubDisassemblesToTheListing() throws {
        let stub = try ShadowStub(regionLength: 64 << 10, sleepNanoseconds: 20_000_000)
        let instructions = try Disassembler().disassemble(stub.code, address: 0x1000, maxInstructions: 32)
        XCTAssertEqual(instructions.map(\.mnemonic), ["lea", "mov", "mov", "mov", "add", "dec", "jne", "mov", "lea", "xor", "syscall", "jmp"])
        XCTAssertEqual(instructions.first { $0.isSyscall }?.address, 0x1000 + UInt64(ShadowStub.syscallOffset))
        XCTAssertEqual(instructions.last?.address, 0x1000 + UInt64(ShadowStub.trapOffset))
        XCTAssertEqual(instructions.reduce(0) { $0 + $1.size }, stub.code.count)
    }

    func testIDTGateDecode() {
        // offset 0xffffffff_81a00b50, selector 0x10, present interrupt gate (0x8E).
        let low: UInt64 = 0x81a0_8e00_0010_0b50, high: UInt64 = 0x0000_0000_ffff_ffff
        let gate = IDTGate(low: low, high: high)
        XCTAssertEqual(gate.offset, 0xffff_ffff_81a0_0b50)
        XCTAssertEqual(gate.selector, 0x10)
        XCTAssertEqual(gate.type, IDTGate.interruptGateType)
        XCTAssertTrue(gate.present)
    }

    func testStateFileRoundTrip() throws {
        let dir = "/tmp/swvmm-statefile-test-\(getpid())"
        let file = ShadowStateFile(key: "unix:/x/gdb.sock", directory: dir)
        let s = ShadowProcess(pid: 42, paging: PagingContext(root: 0x1234000, fiveLevel: true, noExecuteEnabled: false), regionBase: 0x7f00_0000_0000, regionLength: 65536,
                              cookie: Array(0 ..< 16), sleepNanoseconds: 20_000_000, borrowedPID: 7)
        try file.save(s)
        XCTAssertEqual(try file.load(), s)
        file.remove()
        XCTAssertNil(try file.load())
        rmdir(dir)
    }
}
