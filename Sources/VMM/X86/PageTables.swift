import Guest

/// Identity page tables for the first 4 GiB, with 2 MiB pages.
///
/// The 64-bit entry needs paging on and the kernel, zero page and command
/// line identity-mapped (boot.rst, "64-bit Boot Protocol"). Layout: the PML4
/// at `Layout.pageTableRootAddress`, then one PDPT, then four page
/// directories (one per GiB). Entry formats: Intel SDM Vol. 3A §4.5, Tables 4-15 to 4-18.
public enum PageTables {
    /// P: present (bit 0).
    public static let present: UInt64 = 1 << 0
    /// R/W: writable (bit 1).
    public static let writable: UInt64 = 1 << 1
    /// U/S: user accessible (bit 2).
    public static let user: UInt64 = 1 << 2
    /// PS: in a page-directory entry, maps a 2 MiB page (bit 7).
    public static let pageSize: UInt64 = 1 << 7
    /// Bits 51:12 of an entry: the physical address it points to.
    public static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000

    /// Bytes one page directory maps (512 x 2 MiB).
    static let gibibyte: UInt64 = 1 << 30
    /// Size of a 2 MiB page.
    static let largePage: UInt64 = 1 << 21
    /// Entries in one table.
    static let entriesPerTable = 512
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
        pml4[0] = pdpt | present | writable
        try writeTable(pml4, at: root, into: memory)

        var pdptEntries = [UInt64](repeating: 0, count: entriesPerTable)
        for index in 0..<directoryCount {
            pdptEntries[index] = directory(index) | present | writable
            var pd = [UInt64](repeating: 0, count: entriesPerTable)
            for slot in 0..<entriesPerTable {
                pd[slot] = (UInt64(index) * gibibyte + UInt64(slot) * largePage) | present | writable | pageSize
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
