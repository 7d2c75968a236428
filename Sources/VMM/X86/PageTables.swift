import Guest

/// Identity page tables for the first 4 GiB, with 2 MiB pages.
///
/// The 64-bit entry needs paging on and the kernel, zero page and command
/// line identity-mapped (boot.rst, "64-bit Boot Protocol"). Layout: the PML4
/// at `Layout.pageTableRootAddress`, then one PDPT, then four page
/// directories (one per GiB). Entry bits: `X86Paging` (Intel SDM Vol. 3A §4.5).
public enum PageTables {
    /// Bytes one page directory maps (512 x 2 MiB).
    static let gibibyte = PageSize.size1GiB.bytes
    /// Size of a 2 MiB page.
    static let largePage = PageSize.size2MiB.bytes
    /// Entries in one table.
    static let entriesPerTable = X86Paging.entriesPerTable
    /// Entry bits of every table: present and writable (supervisor only).
    static let tableEntry = X86Paging.presentBit | X86Paging.writableBit
    /// Page directories: one per GiB of the 4 GiB mapped.
    static let directoryCount = 4

    /// The PML4 (CR3's target).
    public static var root: UInt64 { Layout.pageTableRootAddress }
    /// The single PDPT.
    public static var pdpt: UInt64 { root + Layout.pageSize }
    /// Page directory `index` (0-3).
    public static func directory(_ index: Int) -> UInt64 { root + Layout.pageSize * UInt64(2 + index) }
    /// First byte past the tables.
    public static var end: UInt64 { directory(directoryCount) }

    /// Writes the tables into guest memory; returns the root for CR3.
    @discardableResult
    public static func write(into memory: PhysicalMemory) throws -> UInt64 {
        var pml4 = [UInt64](repeating: 0, count: entriesPerTable)
        pml4[0] = pdpt | tableEntry
        try writeTable(pml4, at: root, into: memory)

        var pdptEntries = [UInt64](repeating: 0, count: entriesPerTable)
        for index in 0..<directoryCount {
            pdptEntries[index] = directory(index) | tableEntry
            var pd = [UInt64](repeating: 0, count: entriesPerTable)
            for slot in 0..<entriesPerTable {
                pd[slot] = (UInt64(index) * gibibyte + UInt64(slot) * largePage) | tableEntry | X86Paging.pageSizeBit
            }
            try writeTable(pd, at: directory(index), into: memory)
        }
        try writeTable(pdptEntries, at: pdpt, into: memory)
        return root
    }

    private static func writeTable(_ entries: [UInt64], at address: UInt64, into memory: PhysicalMemory) throws {
        let little = entries.map(\.littleEndian)
        try little.withUnsafeBytes { try memory.write(physical: address, from: $0) }
    }
}
