/// Guest-physical memory as seen from outside the guest.
///
/// Both swvmm's own RAM mapping (`VMM.GuestMemory`) and remote targets (a GDB
/// stub in physical-memory mode) conform, so boot loaders, the page walker and
/// shadow context work on either. Every access is bounds-checked by the
/// conformer: addresses and lengths often come from the guest, which is hostile.
public protocol PhysicalMemory: AnyObject {
    /// Copies `buffer.count` bytes starting at guest-physical `address` into `buffer`.
    func read(physical address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
    /// Copies `buffer` into guest memory starting at guest-physical `address`.
    func write(physical address: UInt64, from buffer: UnsafeRawBufferPointer) throws
    /// Writes `count` bytes at `address` that `fill` produces: it is called
    /// with successive buffers and the number of bytes already produced, and
    /// must fill each buffer completely (or throw). Lets a loader read a file
    /// straight into guest RAM; the default goes through a bounded buffer.
    func write(physical address: UInt64, count: Int,
               filledBy fill: (UnsafeMutableRawBufferPointer, Int) throws -> Void) throws
}

/// Errors any `PhysicalMemory` conformer may throw for a bad access.
public enum PhysicalMemoryError: Error, Equatable, CustomStringConvertible {
    /// `[address, address+length)` is not backed by guest RAM (or overflows).
    case outOfRange(address: UInt64, length: Int)

    public var description: String {
        switch self {
        case let .outOfRange(address, length):
            return "guest-physical range \(address.guestHex) + \(length) bytes is not guest RAM"
        }
    }
}

/// Buffer size for the default `write(physical:count:filledBy:)`: large enough
/// that per-call costs do not matter, small beside a kernel image.
public let physicalMemoryFillChunk = 1 << 20

extension PhysicalMemory {
    public func write(physical address: UInt64, count: Int,
                      filledBy fill: (UnsafeMutableRawBufferPointer, Int) throws -> Void) throws {
        guard count >= 0, !address.addingReportingOverflow(UInt64(count)).overflow else {
            throw PhysicalMemoryError.outOfRange(address: address, length: count)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: min(count, physicalMemoryFillChunk), alignment: 16)
        defer { buffer.deallocate() }
        var done = 0
        while done < count {
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< min(buffer.count, count - done)])
            try fill(chunk, done)
            try write(physical: address + UInt64(done), from: UnsafeRawBufferPointer(chunk))
            done += chunk.count
        }
    }

    /// Reads `count` bytes at `address`.
    @inlinable
    public func readBytes(physical address: UInt64, count: Int) throws -> [UInt8] {
        guard count >= 0 else { throw PhysicalMemoryError.outOfRange(address: address, length: count) }
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(physical: address, into: $0) }
        return bytes
    }

    /// Writes `bytes` at `address` (without an intermediate copy when `bytes` is contiguous).
    @inlinable
    public func writeBytes<Bytes: Collection>(physical address: UInt64, _ bytes: Bytes) throws where Bytes.Element == UInt8 {
        let written: Void? = try bytes.withContiguousStorageIfAvailable {
            try write(physical: address, from: UnsafeRawBufferPointer($0))
        }
        if written == nil {
            try Array(bytes).withUnsafeBytes { try write(physical: address, from: $0) }
        }
    }

    /// Reads a little-endian integer at `address` (x86 guests are little-endian).
    @inlinable
    public func readInteger<T: FixedWidthInteger>(physical address: UInt64, as type: T.Type = T.self) throws -> T {
        var value: T = 0
        try withUnsafeMutableBytes(of: &value) { try read(physical: address, into: $0) }
        return T(littleEndian: value)
    }

    /// Writes a little-endian integer at `address`.
    @inlinable
    public func writeInteger<T: FixedWidthInteger>(physical address: UInt64, _ value: T) throws {
        var little = value.littleEndian
        try withUnsafeBytes(of: &little) { try write(physical: address, from: $0) }
    }
}
