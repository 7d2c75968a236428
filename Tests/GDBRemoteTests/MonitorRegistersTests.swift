import Guest
import XCTest
import Shadow
@testable import GDBRemote

/// The IDTR from QEMU's `info registers` text (the GDB protocol has no IDTR).
final class MonitorRegistersTests: XCTestCase {
    /// Two CPUs as `info registers -a` prints them, QEMU's "\r\n" line ends included.
    let twoCPUs = """
    CPU#0\r
    RAX=0000000000000000 RBX=ffffffff82a0c940\r
    GDT=     fffffe0000001000 0000007f\r
    IDT=     fffffe0000000000 00000fff\r
    CPU#1\r
    RAX=0000000000000001 RBX=ffff888003a1c100\r
    IDT=     fffffe0000042000 000001ff\r
    """

    func testEachCPUGetsItsOwnIDTR() {
        XCTAssertEqual(MonitorRegisters.idtRegister(in: twoCPUs, cpuIndex: 0), DescriptorTableRegister(base: 0xFFFF_FE00_0000_0000, limit: 0xFFF))
        XCTAssertEqual(MonitorRegisters.idtRegister(in: twoCPUs, cpuIndex: 1), DescriptorTableRegister(base: 0xFFFF_FE00_0004_2000, limit: 0x1FF))
        XCTAssertNil(MonitorRegisters.idtRegister(in: twoCPUs, cpuIndex: 2))
    }

    func testSingleCPUTextWithoutHeaders() {
        let text = "RAX=0\nIDT=     0000000000001000 000000ff\n"
        XCTAssertEqual(MonitorRegisters.idtRegister(in: text, cpuIndex: 0), DescriptorTableRegister(base: 0x1000, limit: 0xFF))
    }

    func testMalformedOrOversizedLimitIsRejected() {
        XCTAssertNil(MonitorRegisters.idtRegister(in: "IDT=     zzzz 00ff\n", cpuIndex: 0))
        XCTAssertNil(MonitorRegisters.idtRegister(in: "IDT=     1000 00010000\n", cpuIndex: 0))
        XCTAssertNil(MonitorRegisters.idtRegister(in: "IDT=     1000\n", cpuIndex: 0))
    }
}
