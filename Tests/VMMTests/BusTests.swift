import Foundation
import XCTest
@testable import VMM

private final class RecordingPortDevice: PortIODevice {
    var accesses: [(port: UInt16, offset: UInt16, value: UInt8)] = []
    let readValue: UInt8
    init(readValue: UInt8) { self.readValue = readValue }
    func read(port: UInt16, offset: UInt16, into data: UnsafeMutableRawBufferPointer) {
        for index in data.indices { data[index] = readValue }
        accesses.append((port, offset, 0))
    }
    func write(port: UInt16, offset: UInt16, data: UnsafeRawBufferPointer) {
        accesses.append((port, offset, data.first ?? 0))
    }
}

private final class RecordingMMIODevice: MMIODevice {
    var offsets: [UInt64] = []
    func read(address: UInt64, offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        offsets.append(offset)
        for index in data.indices { data[index] = 0x11 }
    }
    func write(address: UInt64, offset: UInt64, data: UnsafeRawBufferPointer) { offsets.append(offset) }
}

final class BusTests: XCTestCase {
    func testOverlappingRegistrationIsRejectedWithBothNames() throws {
        let bus = PortIOBus()
        try bus.register(RecordingPortDevice(readValue: 0), name: "uart", base: 0x3F8, length: 8)
        XCTAssertThrowsError(try bus.register(RecordingPortDevice(readValue: 0), name: "other", base: 0x3FF, length: 2)) {
            guard case let BusError.overlap(_, name, _, _, existingName, existingBase, _) = $0 else {
                return XCTFail("unexpected \($0)")
            }
            XCTAssertEqual(name, "other")
            XCTAssertEqual(existingName, "uart")
            XCTAssertEqual(existingBase, 0x3F8)
            XCTAssertTrue("\($0)".contains("0x03f8"), "\($0)")
        }
        XCTAssertNoThrow(try bus.register(RecordingPortDevice(readValue: 0), name: "below", base: 0x3F0, length: 8))
        XCTAssertNoThrow(try bus.register(RecordingPortDevice(readValue: 0), name: "above", base: 0x400, length: 1))
    }

    func testInvalidRangesAreRejected() {
        let bus = PortIOBus()
        XCTAssertThrowsError(try bus.register(RecordingPortDevice(readValue: 0), name: "e", base: 0x10, length: 0)) {
            XCTAssertEqual($0 as? BusError, .emptyRange(space: .portIO, name: "e", base: 0x10))
        }
        XCTAssertThrowsError(try bus.register(RecordingPortDevice(readValue: 0), name: "w", base: 0xFFFF, length: 2))
        XCTAssertNoThrow(try bus.register(RecordingPortDevice(readValue: 0), name: "top", base: 0xFFFF, length: 1))
        let mmio = MMIOBus()
        XCTAssertThrowsError(try mmio.register(RecordingMMIODevice(), name: "w", base: .max, length: 2))
    }

    func testDispatchReachesTheRightDeviceWithItsOffset() throws {
        let bus = PortIOBus()
        let low = RecordingPortDevice(readValue: 0x11), high = RecordingPortDevice(readValue: 0x22)
        try bus.register(high, name: "high", base: 0x3F8, length: 8)
        try bus.register(low, name: "low", base: 0x60, length: 1)
        var byte: UInt8 = 0
        withUnsafeMutableBytes(of: &byte) { bus.read(port: 0x3FD, into: $0) }
        XCTAssertEqual(byte, 0x22)
        withUnsafeBytes(of: UInt8(0x7E)) { bus.write(port: 0x60, data: $0) }
        XCTAssertEqual(high.accesses.map(\.offset), [5])
        XCTAssertEqual(high.accesses.map(\.port), [0x3FD])
        XCTAssertEqual(low.accesses.map(\.value), [0x7E])
        let stats = bus.statistics()
        XCTAssertEqual(stats.ranges.map(\.name), ["low", "high"], "address order")
        XCTAssertEqual(stats.ranges.map(\.reads), [0, 1])
        XCTAssertEqual(stats.ranges.map(\.writes), [1, 0])
    }

    func testUnclaimedReadsAreAllOnesAndCounted() throws {
        let bus = PortIOBus()
        try bus.register(RecordingPortDevice(readValue: 0), name: "uart", base: 0x3F8, length: 8)
        var word: UInt32 = 0
        withUnsafeMutableBytes(of: &word) { bus.read(port: 0x3F7, into: $0) }
        XCTAssertEqual(word, 0xFFFF_FFFF)
        withUnsafeBytes(of: UInt8(1)) { bus.write(port: 0x80, data: $0) }
        withUnsafeBytes(of: UInt8(1)) { bus.write(port: 0x80, data: $0) }
        let stats = bus.statistics()
        XCTAssertEqual(stats.unclaimedReads, 1)
        XCTAssertEqual(stats.unclaimedWrites, 2)
        XCTAssertEqual(stats.unclaimedByAddress, [0x3F7: 1, 0x80: 2])
    }

    func testMMIODispatchAndUnclaimed() throws {
        let bus = MMIOBus()
        let device = RecordingMMIODevice()
        try bus.register(device, name: "dev", base: 0xD000_0000, length: 0x1000)
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { bus.read(address: 0xD000_0010, into: $0) }
        XCTAssertEqual(value, 0x1111_1111_1111_1111)
        withUnsafeMutableBytes(of: &value) { bus.read(address: 0xD000_1000, into: $0) }
        XCTAssertEqual(value, .max)
        XCTAssertEqual(device.offsets, [0x10])
        XCTAssertEqual(bus.statistics().unclaimedReads, 1)
    }

    func testOneDeviceAtTwoRangesSeesPortsAndIgnoredPortsReadTheirValue() throws {
        let bus = PortIOBus()
        var resets = 0
        let controller = I8042(onReset: { resets += 1 })
        try bus.register(controller, name: "i8042 data", base: I8042Port.data, length: 1)
        try bus.register(controller, name: "i8042 command", base: I8042Port.command, length: 1)
        try bus.register(IgnoredPorts(readValue: 0x20), name: "port B", base: DevicePorts.systemControlB, length: 1)
        withUnsafeBytes(of: UInt8(0xFE)) { bus.write(port: 0x64, data: $0) }
        XCTAssertEqual(resets, 1)
        var byte: UInt8 = 0
        withUnsafeMutableBytes(of: &byte) { bus.read(port: 0x61, into: $0) }
        XCTAssertEqual(byte, 0x20)
        XCTAssertEqual(bus.statistics().unclaimedReads, 0)
    }

    func testConcurrentVCPUsOnOneUARTKeepEveryByte() throws {
        let bus = PortIOBus()
        let sink = ConsoleCapture(capacity: 1 << 16)
        let uart = Serial16550(output: sink.append)
        try bus.register(uart, name: "com1", base: SerialCOM1.base, length: SerialCOM1.length)
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for _ in 0..<1000 {
                withUnsafeBytes(of: UInt8(0x30 + thread)) { bus.write(port: SerialCOM1.base, data: $0) }
            }
        }
        let bytes = sink.bytes
        XCTAssertEqual(bytes.count, 4000)
        for thread in 0..<4 { XCTAssertEqual(bytes.filter { $0 == 0x30 + UInt8(thread) }.count, 1000) }
        XCTAssertEqual(bus.statistics().ranges.first?.writes, 4000)
    }
}
