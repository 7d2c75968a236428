@testable import VMM

/// Byte-level helpers for driving a port I/O device as a vCPU would.
extension PortIODevice {
    func readByte(_ base: UInt16, _ offset: UInt16) -> UInt8 {
        var value: UInt8 = 0
        withUnsafeMutableBytes(of: &value) { read(port: base &+ offset, offset: offset, into: $0) }
        return value
    }

    func writeByte(_ base: UInt16, _ offset: UInt16, _ value: UInt8) {
        withUnsafeBytes(of: value) { write(port: base &+ offset, offset: offset, data: $0) }
    }
}

/// Records what a UART transmits and how its interrupt line moves.
final class SerialProbe {
    var transmitted: [UInt8] = []
    var levels: [Bool] = []
    lazy var uart = Serial16550(output: { [unowned self] in transmitted.append($0) },
                                interruptLine: { [unowned self] in levels.append($0) },
                                inputCapacity: 8)
    let base = SerialCOM1.base

    func read(_ offset: UInt16) -> UInt8 { uart.readByte(base, offset) }
    func write(_ offset: UInt16, _ value: UInt8) { uart.writeByte(base, offset, value) }
}
