import XCTest
@testable import VMM

/// Register-level behaviour of the 16550A model (offsets: 0 RBR/THR/DLL, 1 IER/DLM,
/// 2 IIR/FCR, 3 LCR, 4 MCR, 5 LSR, 6 MSR, 7 SCR).
final class SerialRegisterTests: XCTestCase {
    func testDLABSwitchesOffsetsZeroAndOneToTheDivisorLatch() {
        let probe = SerialProbe()
        probe.write(1, 0x05)            // IER
        probe.write(3, 0x80)            // LCR.DLAB
        probe.write(0, 0x01)            // DLL
        probe.write(1, 0x02)            // DLM
        XCTAssertEqual(probe.read(0), 0x01)
        XCTAssertEqual(probe.read(1), 0x02)
        XCTAssertTrue(probe.transmitted.isEmpty, "a DLL write must not transmit")
        probe.write(3, 0x03)            // 8N1, DLAB off
        XCTAssertEqual(probe.read(1), 0x05, "IER is back at offset 1 and kept its value")
        probe.write(3, 0x83)
        XCTAssertEqual(probe.read(0), 0x01, "the divisor survives DLAB toggling")
        XCTAssertEqual(probe.read(1), 0x02)
        XCTAssertEqual(probe.read(3), 0x83)
    }

    func testIERKeepsOnlyTheLowNibbleAsLinuxProbes() {
        let probe = SerialProbe()
        probe.write(1, 0xFF)
        XCTAssertEqual(probe.read(1), 0x0F)
        probe.write(1, 0x00)
        XCTAssertEqual(probe.read(1), 0x00)
    }

    func testScratchReadsBack() {
        let probe = SerialProbe()
        for value: UInt8 in [0x00, 0x55, 0xAA, 0xFF] {
            probe.write(7, value)
            XCTAssertEqual(probe.read(7), value)
        }
    }

    func testLineStatusWithEmptyAndNonEmptyReceiver() {
        let probe = SerialProbe()
        XCTAssertEqual(probe.read(5), 0x60, "THRE|TEMT, no DR")
        probe.uart.enqueueInput([0x41, 0x42])
        XCTAssertEqual(probe.read(5), 0x61, "DR while bytes wait")
        XCTAssertEqual(probe.read(0), 0x41)
        XCTAssertEqual(probe.read(5), 0x61)
        XCTAssertEqual(probe.read(0), 0x42)
        XCTAssertEqual(probe.read(5), 0x60)
        XCTAssertEqual(probe.read(0), 0x00, "RBR of an empty receiver")
    }

    func testOverflowDropsCountsAndReportsOverrunOnce() {
        let probe = SerialProbe()                  // capacity 8
        probe.uart.enqueueInput(Array(0..<10))
        let stats = probe.uart.statistics()
        XCTAssertEqual(stats.receivedBytes, 8)
        XCTAssertEqual(stats.droppedBytes, 2)
        XCTAssertEqual(probe.read(5), 0x63, "DR|OE|THRE|TEMT")
        XCTAssertEqual(probe.read(5), 0x61, "reading LSR clears OE")
        XCTAssertEqual((0..<8).map { _ in probe.read(0) }, Array(0..<8), "the oldest bytes are kept")
    }

    func testOfferInputTakesOnlyWhatFitsWithoutOverrun() {
        let probe = SerialProbe()
        XCTAssertEqual(probe.uart.offerInput(Array(0..<10)[...]), 8)
        XCTAssertEqual(probe.uart.statistics().droppedBytes, 0)
        XCTAssertEqual(probe.read(5) & 0x02, 0, "no OE for a producer that waits")
    }

    func testTransmittedBytesReachTheSinkInOrder() {
        let probe = SerialProbe()
        let message = Array("Linux version 6.1\r\n".utf8)
        message.forEach { probe.write(0, $0) }
        XCTAssertEqual(probe.transmitted, message)
        XCTAssertEqual(probe.uart.statistics().transmittedBytes, UInt64(message.count))
    }

    func testFIFOControlSetsIdentificationBitsAndClearsReceiver() {
        let probe = SerialProbe()
        XCTAssertEqual(probe.read(2), 0x01, "no FIFO, no interrupt")
        probe.write(2, 0x01)
        XCTAssertEqual(probe.read(2), 0xC1, "FIFOs enabled: bits 7:6 set (Linux reads 16550A here)")
        probe.uart.enqueueInput([1, 2, 3])
        probe.write(2, 0x03)            // keep enabled, clear RX
        XCTAssertEqual(probe.read(5) & 0x01, 0, "RX FIFO cleared")
        probe.uart.enqueueInput([4])
        probe.write(2, 0x00)            // disabling clears too
        XCTAssertEqual(probe.read(5) & 0x01, 0)
        XCTAssertEqual(probe.read(2), 0x01)
    }

    func testWideAccessTouchesConsecutiveRegistersAndOutOfRangeReadsAllOnes() {
        let probe = SerialProbe()
        probe.write(7, 0x5A)
        var word: UInt16 = 0
        withUnsafeMutableBytes(of: &word) { probe.uart.read(port: probe.base + 6, offset: 6, into: $0) }
        XCTAssertEqual(word >> 8, 0x5A, "second byte is SCR")
        var beyond: UInt16 = 0
        withUnsafeMutableBytes(of: &beyond) { probe.uart.read(port: probe.base + 7, offset: 7, into: $0) }
        XCTAssertEqual(beyond, 0xFF5A, "offset 8 is not a register")
    }
}
