import XCTest
@testable import VMM

/// Interrupt identification, priorities and the interrupt line.
final class SerialInterruptTests: XCTestCase {
    func testTHREInterruptRaiseClearAndRaiseAgain() {
        let probe = SerialProbe()
        XCTAssertFalse(probe.uart.interruptAsserted)
        probe.write(1, 0x02)                                  // IER.ETBEI
        XCTAssertEqual(probe.levels, [true], "enabling ETBEI with THR empty raises the line")
        XCTAssertEqual(probe.read(2), 0x02, "IIR: THRE")
        XCTAssertEqual(probe.levels, [true, false], "reading IIR with THRE as the source clears it")
        XCTAssertEqual(probe.read(2), 0x01)
        probe.write(0, 0x41)                                  // THR
        XCTAssertEqual(probe.levels, [true, false, true], "a THR write empties again at once")
        XCTAssertEqual(probe.read(2), 0x02)
        probe.write(1, 0x00)
        probe.write(1, 0x02)
        XCTAssertEqual(probe.read(2), 0x02, "re-enabling ETBEI raises THRE again (Linux's startup test)")
    }

    func testDisablingETBEILowersTheLine() {
        let probe = SerialProbe()
        probe.write(1, 0x02)
        probe.write(1, 0x00)
        XCTAssertEqual(probe.levels, [true, false])
        XCTAssertEqual(probe.read(2), 0x01)
    }

    func testReceivedDataInterruptFollowsTheFIFO() {
        let probe = SerialProbe()
        probe.write(1, 0x01)                                  // ERBFI
        XCTAssertTrue(probe.levels.isEmpty)
        probe.uart.enqueueInput([0x61, 0x62])
        XCTAssertEqual(probe.levels, [true])
        XCTAssertEqual(probe.read(2), 0x04, "IIR: received data available")
        XCTAssertEqual(probe.read(2), 0x04, "reading IIR does not clear RDA")
        _ = probe.read(0)
        XCTAssertTrue(probe.uart.interruptAsserted)
        _ = probe.read(0)
        XCTAssertEqual(probe.levels, [true, false], "drained: line low")
    }

    func testCharacterTimeoutBelowTriggerLevelInFIFOMode() {
        let probe = SerialProbe()
        probe.write(2, 0x41)                                  // FIFO on, trigger 4
        probe.write(1, 0x01)
        probe.uart.enqueueInput([1, 2])
        XCTAssertEqual(probe.read(2), 0xCC, "below trigger: timeout code, FIFO bits set")
        probe.uart.enqueueInput([3, 4])
        XCTAssertEqual(probe.read(2), 0xC4, "at trigger: data available")
    }

    func testPriorityLineStatusThenDataThenTHREThenModemStatus() {
        let probe = SerialProbe()
        probe.write(1, 0x0F)                                  // all sources
        probe.write(4, 0x10)                                  // loopback: MSR inputs change -> deltas
        probe.uart.enqueueInput(Array(repeating: 0x55, count: 9)) // overflow by one: OE
        XCTAssertEqual(probe.read(2), 0x06, "receiver line status first")
        _ = probe.read(5)                                     // clears OE
        XCTAssertEqual(probe.read(2), 0x04, "then received data")
        for _ in 0..<8 { _ = probe.read(0) }
        XCTAssertEqual(probe.read(2), 0x02, "then THRE (cleared by this read)")
        XCTAssertEqual(probe.read(2), 0x00, "then modem status")
        XCTAssertNotEqual(probe.read(6) & 0x0F, 0, "MSR shows the deltas")
        XCTAssertEqual(probe.read(2), 0x01, "reading MSR cleared the last source")
        XCTAssertFalse(probe.uart.interruptAsserted)
    }

    func testReadingIIRDoesNotClearTHREWhenAHigherSourceIsReported() {
        let probe = SerialProbe()
        probe.write(1, 0x03)
        probe.uart.enqueueInput([1])
        XCTAssertEqual(probe.read(2), 0x04)
        _ = probe.read(0)
        XCTAssertEqual(probe.read(2), 0x02, "THRE still pending after RDA was reported")
    }

    func testLevelCallbackOnlyOnChangesAndCounted() {
        let probe = SerialProbe()
        probe.write(1, 0x02)
        probe.write(0, 1); probe.write(0, 2); probe.write(0, 3)
        XCTAssertEqual(probe.levels, [true], "no repeated callbacks while the line stays high")
        XCTAssertEqual(probe.uart.statistics().interruptsRaised, 1)
    }
}
