import CKVM
@testable import VMM
import XCTest

/// Exits from hand-assembled guest code, at both privilege levels.
final class MicroGuestExitTests: XCTestCase {
    /// mov dx, 0x3f8; mov al, 'K'; out dx, al; hlt
    static let outThenHalt: [UInt8] = [0x66, 0xBA, 0xF8, 0x03, 0xB0, 0x4B, 0xEE, 0xF4]

    func testPortWriteAtCPL0ThenHalt() throws {
        let guest = try MicroGuest.make()
        try guest.load(Self.outThenHalt)
        let vcpu = try guest.addVCPU(cpl: 0)
        guard case let .portIO(io) = try vcpu.run() else { return XCTFail("expected a port I/O exit") }
        XCTAssertEqual(io.direction, .write)
        XCTAssertEqual(io.port, 0x3F8)
        XCTAssertEqual(io.size, 1)
        XCTAssertEqual(Array(io.data), [0x4B])
        let next = try vcpu.run()
        guard case .halt = next else { return XCTFail("expected HLT, got \(next.name)") }
    }

    func testPortWriteAtCPL3() throws {
        let guest = try MicroGuest.make()
        try guest.load(Self.outThenHalt)
        let vcpu = try guest.addVCPU(cpl: 3)
        let exit = try vcpu.run()
        guard case let .portIO(io) = exit else { return XCTFail("expected a port I/O exit, got \(exit.name)") }
        XCTAssertEqual(io.port, 0x3F8)
        XCTAssertEqual(Array(io.data), [0x4B])
    }
}
