import Guest

/// A fake of guest RAM for tests: a sparse, zero-filled guest-physical address
/// space of `size` bytes, backed by 4 KiB Swift arrays allocated on first write.
/// It behaves like a `PhysicalMemory` conformer should: any access not wholly
/// inside `[0, size)` throws `PhysicalMemoryError.outOfRange`.
final class SparsePhysicalMemory: PhysicalMemory {
    static let pageSize = 0x1000
    let size: UInt64
    private(set) var pages: [UInt64: [UInt8]] = [:]

    init(size: UInt64) { self.size = size }

    private func check(_ address: UInt64, _ count: Int) throws {
        let (end, overflow) = address.addingReportingOverflow(UInt64(count))
        if overflow || end > size { throw PhysicalMemoryError.outOfRange(address: address, length: count) }
    }

    func read(physical address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        try check(address, buffer.count)
        for i in 0 ..< buffer.count {
            let a = address + UInt64(i)
            let page = a & ~UInt64(Self.pageSize - 1)
            buffer[i] = pages[page]?[Int(a - page)] ?? 0
        }
    }

    func write(physical address: UInt64, from buffer: UnsafeRawBufferPointer) throws {
        try check(address, buffer.count)
        for i in 0 ..< buffer.count {
            let a = address + UInt64(i)
            let page = a & ~UInt64(Self.pageSize - 1)
            pages[page, default: [UInt8](repeating: 0, count: Self.pageSize)][Int(a - page)] = buffer[i]
        }
    }
}

/// Entry bits used to build page tables in tests (Intel SDM Vol. 3A tables 4-14..4-20).
enum PTE {
    static let present: UInt64 = 1 << 0
    static let writable: UInt64 = 1 << 1
    static let user: UInt64 = 1 << 2
    static let pageSize: UInt64 = 1 << 7
    static let pat: UInt64 = 1 << 12       // PAT bit of a 2 MiB/1 GiB entry: not an address bit
    static let noExecute: UInt64 = 1 << 63
    static let protectionKey: UInt64 = 0xF << 59
    static let all: UInt64 = present | writable | user
}

/// Builds x86-64 page tables in a `SparsePhysicalMemory`, allocating table
/// pages upward from `tableBase`. Intermediate entries get `tableFlags`
/// when created; tests change individual entries with `entryAddress`.
final class PageTableBuilder {
    let memory: SparsePhysicalMemory
    let fiveLevel: Bool
    let root: UInt64
    private var nextTable: UInt64

    init(memory: SparsePhysicalMemory, fiveLevel: Bool, tableBase: UInt64 = 0x10_0000) {
        self.memory = memory
        self.fiveLevel = fiveLevel
        self.root = tableBase
        self.nextTable = tableBase + 0x1000
    }

    var context: PagingContext { PagingContext(root: root, fiveLevel: fiveLevel) }

    static func index(_ va: UInt64, level: Int) -> UInt64 { (va >> UInt64(12 + 9 * (level - 1))) & 0x1FF }

    /// Physical address of the entry for `va` at `level` (5..1), creating the
    /// tables above it as needed.
    func entryAddress(_ va: UInt64, level target: Int, tableFlags: UInt64 = PTE.all) throws -> UInt64 {
        var table = root
        var level = fiveLevel ? 5 : 4
        while true {
            let entryAddress = table + 8 * Self.index(va, level: level)
            if level == target { return entryAddress }
            var entry: UInt64 = try memory.readInteger(physical: entryAddress)
            if entry & PTE.present == 0 {
                entry = nextTable | tableFlags
                nextTable += 0x1000
                try memory.writeInteger(physical: entryAddress, entry)
            }
            table = entry & 0x000F_FFFF_FFFF_F000
            level -= 1
        }
    }

    /// Maps the 4 KiB page at `va` to `pa` with `flags` in the PTE.
    func map4K(_ va: UInt64, to pa: UInt64, flags: UInt64 = PTE.all, tableFlags: UInt64 = PTE.all) throws {
        try memory.writeInteger(physical: entryAddress(va, level: 1, tableFlags: tableFlags), pa | flags)
    }

    /// Maps a 2 MiB page (PS in the PDE).
    func map2M(_ va: UInt64, to pa: UInt64, flags: UInt64 = PTE.all) throws {
        try memory.writeInteger(physical: entryAddress(va, level: 2), pa | flags | PTE.pageSize)
    }

    /// Maps a 1 GiB page (PS in the PDPTE).
    func map1G(_ va: UInt64, to pa: UInt64, flags: UInt64 = PTE.all) throws {
        try memory.writeInteger(physical: entryAddress(va, level: 3), pa | flags | PTE.pageSize)
    }

    /// ORs/clears bits of an existing entry.
    func modify(_ va: UInt64, level: Int, set: UInt64 = 0, clear: UInt64 = 0) throws {
        let address = try entryAddress(va, level: level)
        let entry: UInt64 = try memory.readInteger(physical: address)
        try memory.writeInteger(physical: address, (entry | set) & ~clear)
    }
}
