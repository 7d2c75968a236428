/// Why a virtual-address access through `GuestView` was refused. Translation
/// failures are thrown as `PageWalkError`, physical-access failures as the
/// `PhysicalMemory` conformer's error.
public enum GuestViewError: Error, Equatable, CustomStringConvertible {
    /// A transfer longer than `GuestView.maximumTransfer` (or negative).
    case transferTooLarge(virtual: UInt64, requested: Int, cap: Int)
    /// `virtual + count` wraps around the address space.
    case addressOverflow(virtual: UInt64, count: Int)
    /// The page is mapped read-only (also the case for copy-on-write and the
    /// shared zero page) in at least one level.
    case notWritable(virtual: UInt64, permissions: PagePermissions)
    /// The page is supervisor-only in at least one level.
    case notUser(virtual: UInt64, permissions: PagePermissions)
    /// No NUL byte within the caller's bound.
    case unterminatedString(virtual: UInt64, max: Int)

    public var description: String {
        switch self {
        case let .transferTooLarge(va, requested, cap):
            return "access of \(requested) bytes at \(va.guestHex) exceeds the cap of \(cap) bytes"
        case let .addressOverflow(va, count):
            return "access of \(count) bytes at \(va.guestHex) wraps around the address space"
        case let .notWritable(va, permissions):
            return "refusing to write at \(va.guestHex): page is read-only (\(permissions))"
        case let .notUser(va, permissions):
            return "refusing to write at \(va.guestHex): page is supervisor-only (\(permissions))"
        case let .unterminatedString(va, max):
            return "no NUL within \(max) bytes of the string at \(va.guestHex)"
        }
    }
}

/// Guest memory as one address space sees it: reads and writes by
/// guest-virtual address over a `PhysicalMemory` and a `PagingContext`.
///
/// Each page of an access is translated separately and afresh (physical
/// pages need not be contiguous, and they move). Every length is bounded by
/// the caller and by `maximumTransfer`: lengths read from the guest are
/// hostile. Not thread-safe to mutate `context` concurrently with accesses.
public final class GuestView {
    /// Hard cap on one read or write, whatever the caller asks for.
    public static let maximumTransfer = 16 << 20

    /// Guest-physical memory underneath.
    public let memory: PhysicalMemory
    /// The address space; may be switched to another process's root.
    public var context: PagingContext

    public init(memory: PhysicalMemory, context: PagingContext) {
        self.memory = memory
        self.context = context
    }

    /// Translates one virtual address (a fresh walk).
    public func translate(_ virtual: UInt64) throws -> Translation {
        try PageWalker(memory: memory).translate(virtual, in: context)
    }

    /// Reads `buffer.count` bytes starting at `virtual`, page by page.
    public func read(virtual: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        try checkBounds(virtual: virtual, count: buffer.count)
        var done = 0
        while done < buffer.count {
            let address = virtual &+ UInt64(done)
            let translation = try translate(address)
            let chunk = min(buffer.count - done, Int(translation.bytesToPageEnd))
            let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[done ..< done + chunk])
            try memory.read(physical: translation.physical, into: slice)
            done += chunk
        }
    }

    /// Reads `count` bytes at `virtual`.
    public func read(virtual: UInt64, count: Int) throws -> [UInt8] {
        try checkBounds(virtual: virtual, count: count)
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(virtual: virtual, into: $0) }
        return bytes
    }

    /// Reads a NUL-terminated string of at most `max` bytes (NUL excluded) and
    /// decodes it as UTF-8 (invalid sequences become U+FFFD). Never reads past
    /// the page that holds the terminator, so a string ending just before an
    /// unmapped page is readable.
    public func readCString(virtual: UInt64, max: Int) throws -> String {
        String(decoding: try readCStringBytes(virtual: virtual, max: max), as: UTF8.self)
    }

    /// The raw bytes of a NUL-terminated string (terminator excluded); see
    /// `readCString(virtual:max:)`.
    public func readCStringBytes(virtual: UInt64, max: Int) throws -> [UInt8] {
        try checkBounds(virtual: virtual, count: max)
        var result: [UInt8] = []
        // `max` bytes of text plus the terminator.
        let limit = max + 1
        var offset = 0
        while offset < limit {
            let address = virtual &+ UInt64(offset)
            let translation = try translate(address)
            let chunk = min(limit - offset, Int(translation.bytesToPageEnd))
            let bytes = try memory.readBytes(physical: translation.physical, count: chunk)
            if let nul = bytes.firstIndex(of: 0) {
                result.append(contentsOf: bytes[..<nul])
                return result
            }
            result.append(contentsOf: bytes)
            offset += chunk
        }
        throw GuestViewError.unterminatedString(virtual: virtual, max: max)
    }

    /// Writes `bytes` at `virtual`, only through entries that are present,
    /// writable and user at every level. All pages are checked before the first
    /// byte is written, so a refused write changes nothing (only a failure of
    /// the physical memory itself, midway, can leave part of it written). Copy-on-write and
    /// zero pages are read-only in their PTE and therefore refused.
    public func write<Bytes: Collection>(virtual: UInt64, _ bytes: Bytes) throws where Bytes.Element == UInt8 {
        let data = Array(bytes)
        try checkBounds(virtual: virtual, count: data.count)
        var chunks: [(physical: UInt64, range: Range<Int>)] = []
        var done = 0
        while done < data.count {
            let address = virtual &+ UInt64(done)
            let translation = try translate(address)
            let permissions = translation.permissions
            guard permissions.user else { throw GuestViewError.notUser(virtual: address, permissions: permissions) }
            guard permissions.writable else { throw GuestViewError.notWritable(virtual: address, permissions: permissions) }
            let chunk = min(data.count - done, Int(translation.bytesToPageEnd))
            chunks.append((translation.physical, done ..< done + chunk))
            done += chunk
        }
        try data.withUnsafeBytes { all in
            for (physical, range) in chunks {
                try memory.write(physical: physical, from: UnsafeRawBufferPointer(rebasing: all[range]))
            }
        }
    }

    /// Reads a little-endian integer at `virtual` (may cross a page boundary).
    public func readInteger<T: FixedWidthInteger>(virtual: UInt64, as type: T.Type = T.self) throws -> T {
        var value: T = 0
        try withUnsafeMutableBytes(of: &value) { try read(virtual: virtual, into: $0) }
        return T(littleEndian: value)
    }

    /// Writes a little-endian integer at `virtual`, under the rules of `write`.
    public func writeInteger<T: FixedWidthInteger>(virtual: UInt64, _ value: T) throws {
        var little = value.littleEndian
        let bytes = withUnsafeBytes(of: &little) { Array($0) }
        try write(virtual: virtual, bytes)
    }

    /// Reads a 64-bit pointer at `virtual`.
    public func readPointer(virtual: UInt64) throws -> UInt64 {
        try readInteger(virtual: virtual, as: UInt64.self)
    }

    private func checkBounds(virtual: UInt64, count: Int) throws {
        guard count >= 0, count <= GuestView.maximumTransfer else {
            throw GuestViewError.transferTooLarge(virtual: virtual, requested: count, cap: GuestView.maximumTransfer)
        }
        // An access may end exactly at the top of the address space.
        if count > 0, virtual.addingReportingOverflow(UInt64(count - 1)).overflow {
            throw GuestViewError.addressOverflow(virtual: virtual, count: count)
        }
    }
}
