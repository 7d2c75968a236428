/// Ports a Linux guest touches that need no model: writes are dropped, reads
/// return a fixed value, and unlike unclaimed ports they are not reported as unknown.
///
/// Typical registrations:
/// - 0x80, the POST diagnostic port: Linux writes it as an I/O delay (`outb_p`).
///   ("Port 0x80" in the IBM PC/AT Technical Reference; reads are never needed.)
/// - 0x61, system control port B (speaker gate, PIT channel 2 output): when the VM
///   has KVM's in-kernel PIT (KVM_CREATE_PIT2) KVM decodes 0x61 itself and this is
///   never reached; without it, register this so TSC calibration reads 0 instead of 0xFF.
public final class IgnoredPorts: PortIODevice, @unchecked Sendable {
    private let readValue: UInt8

    /// - Parameter readValue: the byte every read returns.
    public init(readValue: UInt8 = 0) {
        self.readValue = readValue
    }

    public func read(port: UInt16, offset: UInt16, into data: UnsafeMutableRawBufferPointer) {
        for index in data.indices { data[index] = readValue }
    }

    public func write(port: UInt16, offset: UInt16, data: UnsafeRawBufferPointer) {}
}

/// Fixed PC ports that `IgnoredPorts` usually covers.
public enum DevicePorts {
    /// The POST diagnostic port (IBM PC/AT: writes show on a POST card; Linux uses it as an I/O delay).
    public static let postDiagnostic: UInt16 = 0x80
    /// System control port B (IBM PC/AT: speaker gate and PIT channel 2 status).
    public static let systemControlB: UInt16 = 0x61
}
