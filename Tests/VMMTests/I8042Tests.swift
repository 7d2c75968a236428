import XCTest
@testable import VMM

final class I8042Tests: XCTestCase {
    private var resets = 0
    private lazy var controller = I8042(onReset: { [unowned self] in resets += 1 })

    private func command(_ value: UInt8) { controller.writeByte(I8042Port.command, 0, value) }
    private func status() -> UInt8 { controller.readByte(I8042Port.command, 0) }
    private func data() -> UInt8 { controller.readByte(I8042Port.data, 0) }

    func testResetCommandCallsOnReset() {
        command(0xFE)
        XCTAssertEqual(resets, 1)
        XCTAssertEqual(controller.resetRequests, 1)
    }

    func testOtherCommandsAndDataDoNotReset() {
        for value: UInt8 in [0x20, 0xAA, 0xAD, 0xAE, 0xD1, 0xFF] { command(value) }
        controller.writeByte(I8042Port.data, 0, 0xFE)
        XCTAssertEqual(resets, 0)
    }

    func testStatusIsIdleAndDoesNotClaimBusyBuffers() {
        let idle = status()
        XCTAssertEqual(idle & 0x03, 0, "neither output nor input buffer full: Linux's flush and waits end")
        XCTAssertNotEqual(idle, 0xFF)
    }

    func testControlByteReadWriteAndSelfTest() {
        command(0x20)
        XCTAssertEqual(status() & 0x01, 0x01, "reply waiting")
        XCTAssertEqual(data(), 0x45)
        XCTAssertEqual(status() & 0x01, 0x00)
        command(0x60)
        controller.writeByte(I8042Port.data, 0, 0x34)
        command(0x20)
        XCTAssertEqual(data(), 0x34)
        command(0xAA)
        XCTAssertEqual(data(), 0x55)
    }

    func testNoAuxiliaryPortIsReportedWithoutTimeouts() {
        command(0xD3)
        controller.writeByte(I8042Port.data, 0, 0x5A)
        XCTAssertEqual(status() & 0x21, 0x01, "loop byte comes back without the AUX flag")
        XCTAssertEqual(data(), 0x5A)
        command(0xA9)
        XCTAssertEqual(data(), 0x01, "AUX test: clock stuck low")
    }

    func testKeyboardAcknowledgesAndRaisesIRQ1() {
        var levels: [Bool] = []
        let keyboard = I8042(onReset: {}, keyboardInterrupt: { levels.append($0) })
        keyboard.writeByte(I8042Port.data, 0, 0xF2)
        XCTAssertEqual(levels, [true])
        XCTAssertEqual((0..<3).map { _ in keyboard.readByte(I8042Port.data, 0) }, [0xFA, 0xAB, 0x83])
        XCTAssertEqual(levels, [true, false])
    }
}
