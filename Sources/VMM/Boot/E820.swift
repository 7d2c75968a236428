/// One entry of the BIOS e820 memory map (`struct boot_e820_entry`: 8 + 8 + 4 bytes, packed).
public struct E820Entry: Sendable, Equatable {
    /// Entry types (ACPI spec "Address Range Types"; Linux arch/x86/include/uapi/asm/e820.h).
    public enum Kind: UInt32, Sendable {
        case ram = 1
        case reserved = 2
        case acpiReclaimable = 3
        case acpiNVS = 4
        case unusable = 5
        case persistentMemory = 7
    }

    /// Bytes per entry in `boot_params.e820_table`.
    public static let encodedSize = 20

    public let address: UInt64
    public let size: UInt64
    public let type: Kind

    public init(address: UInt64, size: UInt64, type: Kind) {
        self.address = address
        self.size = size
        self.type = type
    }

    /// First address past the entry.
    public var end: UInt64 { address + size }

    /// The 20-byte little-endian encoding.
    public var encoded: [UInt8] {
        var writer = ByteWriter(count: Self.encodedSize)
        writer.put(address, at: 0)
        writer.put(size, at: 8)
        writer.put(type.rawValue, at: 16)
        return writer.bytes
    }
}

/// Builds the memory map swvmm reports to the guest.
public enum E820Map {
    /// The map for guest RAM `regions` (ascending, the first starting at 0):
    ///
    /// - RAM `0 ..< Layout.ebdaStart` (conventional memory),
    /// - reserved `Layout.ebdaStart ..< Layout.highMemoryStart` (EBDA holding the MP
    ///   table, then the VGA hole and BIOS ROM area, which a PC never has as RAM),
    /// - RAM from 1 MiB to the end of the first region,
    /// - each further region (above 4 GiB) as RAM.
    public static func build(memoryRegions regions: [MemoryRegion]) throws -> [E820Entry] {
        guard let low = regions.first, low.guestAddress == 0, low.end > Layout.highMemoryStart else {
            let size = regions.first?.size ?? 0
            throw BootError.memoryTooSmall(size: size, needed: Layout.highMemoryStart * 2)
        }
        var map = [
            E820Entry(address: 0, size: Layout.ebdaStart, type: .ram),
            E820Entry(address: Layout.ebdaStart, size: Layout.highMemoryStart - Layout.ebdaStart, type: .reserved),
            E820Entry(address: Layout.highMemoryStart, size: low.end - Layout.highMemoryStart, type: .ram),
        ]
        for region in regions.dropFirst() {
            map.append(E820Entry(address: region.guestAddress, size: region.size, type: .ram))
        }
        return map
    }
}
