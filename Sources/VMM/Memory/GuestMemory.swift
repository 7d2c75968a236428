import Glibc
import Guest

/// One contiguous piece of guest RAM: `size` bytes of host memory that appear at
/// guest-physical `guestAddress`. Each region becomes one KVM memory slot.
public struct MemoryRegion: Sendable, Equatable {
    /// Guest-physical start.
    public let guestAddress: UInt64
    /// Length in bytes.
    public let size: UInt64
    /// Guest-physical end (exclusive).
    public var end: UInt64 { guestAddress + size }
}

/// Errors creating guest memory.
public enum GuestMemoryError: Error, Equatable, CustomStringConvertible {
    /// The requested size is zero or not page-aligned.
    case invalidSize(UInt64)
    /// mmap(2) failed.
    case mapFailed(size: UInt64, errno: Int32)

    public var description: String {
        switch self {
        case let .invalidSize(size):
            return "guest memory size \(size) must be a non-zero multiple of 4 KiB"
        case let .mapFailed(size, errno):
            return "cannot map \(size) bytes of guest memory: \(errnoText(errno))"
        }
    }
}

/// Guest RAM: one anonymous host mapping, laid out as one region below the
/// 32-bit MMIO hole and, for large guests, a second region above 4 GiB.
///
/// Owns the mapping and unmaps it when released. All accesses are
/// bounds-checked against the regions, so an address that came from the guest
/// can never reach host memory outside guest RAM.
public final class GuestMemory: PhysicalMemory, @unchecked Sendable {
    /// The guest-physical regions, in ascending order.
    public let regions: [MemoryRegion]
    /// Total RAM in bytes.
    public let size: UInt64
    /// Host address of the mapping; region i starts at `hostBase + offset(i)`.
    public let hostBase: UnsafeMutableRawPointer

    /// Maps `size` bytes of zeroed RAM, split around `Layout.mmioHoleStart ..< Layout.mmioHoleEnd`.
    public init(size: UInt64) throws {
        guard size > 0, size % Layout.pageSize == 0 else { throw GuestMemoryError.invalidSize(size) }
        guard size <= UInt64(Int.max) else { throw GuestMemoryError.invalidSize(size) }
        // MAP_NORESERVE: a 4 GiB guest that touches 100 MiB costs 100 MiB.
        let mapping = mmap(nil, Int(size), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let mapping, mapping != MAP_FAILED else {
            throw GuestMemoryError.mapFailed(size: size, errno: errno)
        }
        hostBase = mapping
        self.size = size
        self.regions = GuestMemory.layout(size: size)
    }

    deinit {
        munmap(hostBase, Int(size))
    }

    /// The regions a guest of `size` bytes gets: RAM up to the MMIO hole, the rest above 4 GiB.
    public static func layout(size: UInt64) -> [MemoryRegion] {
        if size <= Layout.mmioHoleStart {
            return [MemoryRegion(guestAddress: 0, size: size)]
        }
        return [MemoryRegion(guestAddress: 0, size: Layout.mmioHoleStart),
                MemoryRegion(guestAddress: Layout.mmioHoleEnd, size: size - Layout.mmioHoleStart)]
    }

    /// Host address of region `index`.
    public func hostAddress(ofRegion index: Int) -> UnsafeMutableRawPointer {
        var offset: UInt64 = 0
        for region in regions.prefix(index) { offset += region.size }
        return hostBase + Int(offset)
    }

    /// Host pointer for `[address, address+length)` if it lies inside one region, else nil.
    public func hostPointer(physical address: UInt64, length: Int) -> UnsafeMutableRawPointer? {
        guard length >= 0 else { return nil }
        var offset: UInt64 = 0
        for region in regions {
            let (end, overflow) = address.addingReportingOverflow(UInt64(length))
            if !overflow, address >= region.guestAddress, end <= region.end {
                return hostBase + Int(offset + (address - region.guestAddress))
            }
            offset += region.size
        }
        return nil
    }

    public func read(physical address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard let source = hostPointer(physical: address, length: buffer.count) else {
            throw PhysicalMemoryError.outOfRange(address: address, length: buffer.count)
        }
        if let destination = buffer.baseAddress { destination.copyMemory(from: source, byteCount: buffer.count) }
    }

    public func write(physical address: UInt64, from buffer: UnsafeRawBufferPointer) throws {
        guard let destination = hostPointer(physical: address, length: buffer.count) else {
            throw PhysicalMemoryError.outOfRange(address: address, length: buffer.count)
        }
        if let source = buffer.baseAddress { destination.copyMemory(from: source, byteCount: buffer.count) }
    }

    /// Hands `fill` the guest RAM itself (bounds-checked first), so a file is
    /// read straight into the guest with no copy in swvmm's own memory.
    public func write(physical address: UInt64, count: Int,
                      filledBy fill: (UnsafeMutableRawBufferPointer, Int) throws -> Void) throws {
        guard let destination = hostPointer(physical: address, length: count) else {
            throw PhysicalMemoryError.outOfRange(address: address, length: count)
        }
        guard count > 0 else { return }
        try fill(UnsafeMutableRawBufferPointer(start: destination, count: count), 0)
    }
}

extension GuestMemory {
    /// Bytes of guest RAM the host has actually backed with pages (mincore(2)),
    /// so RSS figures can exclude the guest.
    public func residentBytes() -> UInt64 {
        let pageSize = Int(Layout.pageSize)
        let pages = Int(size) / pageSize
        var vector = [UInt8](repeating: 0, count: pages)
        guard mincore(hostBase, Int(size), &vector) == 0 else { return 0 }
        return UInt64(vector.reduce(0) { $0 + Int($1 & 1) }) * UInt64(pageSize)
    }
}
