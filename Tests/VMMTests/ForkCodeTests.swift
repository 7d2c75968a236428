@testable import KVMShadow
import Guest
import Shadow
import XCTest

/// The code a borrowed process runs to make S, checked by decoding it (the
/// guest runs it for real in the KVM host's native shadow tests): it decodes
/// whole, every jump lands on an instruction of its own, P's marker is a
/// getpid right before the offset swvmm waits for, and every rip-relative
/// address it loads lies in page 0 of the region or in S's stack page.
final class ForkCodeTests: XCTestCase {
    private let code = ForkCode()

    private func decoded() throws -> [Instruction] {
        try Disassembler().disassemble(code.bytes, address: UInt64(ForkCode.offset), maxInstructions: 200)
    }

    func testDecodesWholeWithJumpsOntoItsOwnInstructions() throws {
        let instructions = try decoded()
        XCTAssertEqual(instructions.reduce(0) { $0 + $1.size }, code.bytes.count, "no bytes left undecoded")
        let starts = Set(instructions.map(\.address))
        for jump in instructions where jump.mnemonic.hasPrefix("j") {
            let operand = jump.operands
            guard let target = operand.hasPrefix("0x") ? UInt64(operand.dropFirst(2), radix: 16) : UInt64(operand) else {
                return XCTFail("jump without a literal target: \(jump)")
            }
            // The last jump enters the stub at the region's start.
            XCTAssertTrue(starts.contains(target) || target == UInt64(ShadowStub.entryOffset), "\(jump) lands on an instruction")
        }
    }

    func testMarkerIsGetpidJustBeforeTheReturnSwvmmWaitsFor() throws {
        let instructions = try decoded()
        guard let index = instructions.firstIndex(where: { $0.address + UInt64($0.size) == UInt64(code.markReturnOffset) }) else {
            return XCTFail("no instruction ends at the marker's return offset")
        }
        XCTAssertTrue(instructions[index].isSyscall)
        XCTAssertEqual(instructions[index - 1].description, "mov eax, 0x\(String(LinuxABI.Syscall.getpid, radix: 16))")
        XCTAssertEqual(instructions[index - 2].description, "mov rbx, rax", "the fork's outcome is left in rbx for swvmm")
        XCTAssertEqual(instructions.filter(\.isSyscall).count, 11,
                       "clone, wait4, the marker, clone, exit, setsid, sigprocmask, 3 prctl, sched_setaffinity, no more")
    }

    func testRipRelativeLoadsStayInTheRegionsFirstTwoPages() throws {
        for lea in try decoded() where lea.mnemonic == "lea" {
            let plus = lea.operands.range(of: "[rip + 0x"), minus = lea.operands.range(of: "[rip - 0x")
            guard let open = plus ?? minus, let close = lea.operands.range(of: "]") else {
                return XCTFail("lea without a rip-relative operand: \(lea)")
            }
            let magnitude = Int(lea.operands[open.upperBound ..< close.lowerBound], radix: 16) ?? Int.max
            let displacement = plus != nil ? magnitude : -magnitude
            let target = Int(lea.address) + lea.size + displacement
            XCTAssertLessThan(target, 2 * 4096, "\(lea) stays in the code page or the stack page")
            XCTAssertGreaterThanOrEqual(target, ShadowStub.headerOffset, "\(lea) points into the header or the stack")
        }
    }
}
