/// A device reached through x86 port I/O (`in`/`out`, KVM_EXIT_IO).
///
/// The bus serialises calls per device, so an implementation needs no lock of its
/// own unless something other than the bus (a host input thread) also touches it.
/// `data.count` is the access size (1, 2 or 4 bytes for port I/O). Implementations
/// must accept any port, offset, size and value without trapping: the guest chooses them.
public protocol PortIODevice: AnyObject {
    /// Fills `data` with the value the guest reads. `offset` is `port - base` of the range the device was registered at.
    func read(port: UInt16, offset: UInt16, into data: UnsafeMutableRawBufferPointer)
    /// Handles a guest write of `data`. `offset` is `port - base` of the range the device was registered at.
    func write(port: UInt16, offset: UInt16, data: UnsafeRawBufferPointer)
}

/// A device reached through memory-mapped I/O (KVM_EXIT_MMIO), at guest-physical addresses.
///
/// Same contract as `PortIODevice`: serialised per device by the bus, any access must be survivable.
public protocol MMIODevice: AnyObject {
    /// Fills `data` with the value the guest reads. `offset` is `address - base` of the device's range.
    func read(address: UInt64, offset: UInt64, into data: UnsafeMutableRawBufferPointer)
    /// Handles a guest write of `data`. `offset` is `address - base` of the device's range.
    func write(address: UInt64, offset: UInt64, data: UnsafeRawBufferPointer)
}

/// Which address space a bus decodes (for messages and statistics).
public enum BusAddressSpace: String, Sendable, Equatable {
    case portIO = "port I/O"
    case mmio = "MMIO"

    /// Formats an address the way the space is usually written (ports as 4 hex digits).
    func format(_ address: UInt64) -> String {
        let digits = String(address, radix: 16)
        let width = self == .portIO ? 4 : 8
        return "0x" + String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
