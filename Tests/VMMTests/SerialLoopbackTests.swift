import XCTest
@testable import VMM

/// MCR bit 4 loopback, which Linux's 8250 autoconfig uses to tell a UART is there.
final class SerialLoopbackTests: XCTestCase {
    func testModemOutputsAppearInModemStatus() {
        let probe = SerialProbe()
        XCTAssertEqual(probe.read(6) & 0xF0, 0xB0, "outside loopback: DCD, DSR, CTS from a ready host")
        probe.write(4, 0x10 | 0x08 | 0x02)                    // LOOP|OUT2|RTS: Linux's probe value
        XCTAssertEqual(probe.read(6) & 0xF0, 0x90, "OUT2 -> DCD, RTS -> CTS")
        probe.write(4, 0x10 | 0x04 | 0x01)                    // LOOP|OUT1|DTR
        XCTAssertEqual(probe.read(6) & 0xF0, 0x60, "OUT1 -> RI, DTR -> DSR")
        XCTAssertEqual(probe.read(4), 0x15, "MCR reads back")
    }

    func testDeltaBitsAndTrailingEdgeOfRI() {
        let probe = SerialProbe()
        probe.write(4, 0x10 | 0x04)                           // RI on
        _ = probe.read(6)
        probe.write(4, 0x10)                                  // RI off: trailing edge
        XCTAssertEqual(probe.read(6) & 0x0F, 0x04, "TERI only")
        XCTAssertEqual(probe.read(6) & 0x0F, 0x00, "deltas clear on read")
    }

    func testTransmittedBytesLoopIntoTheReceiverNotTheSink() {
        let probe = SerialProbe()
        probe.write(4, 0x10)
        probe.write(0, 0xA5)
        XCTAssertTrue(probe.transmitted.isEmpty)
        XCTAssertEqual(probe.read(5) & 0x01, 0x01)
        XCTAssertEqual(probe.read(0), 0xA5)
        probe.write(4, 0x00)
        probe.write(0, 0x5A)
        XCTAssertEqual(probe.transmitted, [0x5A], "out of loopback, bytes reach the sink again")
    }
}
