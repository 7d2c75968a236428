/// One level of the x86-64 paging hierarchy, named as in the Intel SDM.
public enum PageTableLevel: Int, Sendable, CustomStringConvertible {
    case pageTable = 1
    case pageDirectory = 2
    case pageDirectoryPointerTable = 3
    case pml4 = 4
    case pml5 = 5

    /// Lowest virtual-address bit that this level's index uses.
    var indexShift: Int { X86Paging.pageShift + X86Paging.indexBits * (rawValue - 1) }

    public var description: String {
        switch self {
        case .pageTable: return "PT"
        case .pageDirectory: return "PD"
        case .pageDirectoryPointerTable: return "PDPT"
        case .pml4: return "PML4"
        case .pml5: return "PML5"
        }
    }
}

/// Size of the page a translation ends in.
public enum PageSize: UInt64, Sendable, CustomStringConvertible {
    case size4KiB = 0x1000
    case size2MiB = 0x20_0000
    case size1GiB = 0x4000_0000

    /// Size in bytes.
    public var bytes: UInt64 { rawValue }

    public var description: String {
        switch self {
        case .size4KiB: return "4 KiB"
        case .size2MiB: return "2 MiB"
        case .size1GiB: return "1 GiB"
        }
    }
}

/// Access rights of a page, combined over every level of the walk as the CPU
/// does (SDM Vol. 3A §4.6): a page is writable or user only if every entry on
/// the path says so, and not executable if any entry sets XD.
public struct PagePermissions: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var present: Bool
    public var writable: Bool
    public var user: Bool
    public var executable: Bool

    public init(present: Bool, writable: Bool, user: Bool, executable: Bool) {
        self.present = present
        self.writable = writable
        self.user = user
        self.executable = executable
    }

    public var description: String {
        (present ? "p" : "-") + (writable ? "w" : "-") + (user ? "u" : "s") + (executable ? "x" : "-")
    }
}

/// The result of translating one virtual address.
public struct Translation: Equatable, Sendable {
    /// The virtual address that was translated.
    public let virtual: UInt64
    /// The guest-physical address it maps to.
    public let physical: UInt64
    /// Size of the page containing it.
    public let pageSize: PageSize
    /// Rights accumulated across every level.
    public let permissions: PagePermissions
    /// Guest-physical address of the final (leaf) entry, for diagnostics.
    public let leafEntryAddress: UInt64
    /// The level whose entry mapped the page (PT, or PD/PDPT for large pages).
    public let leafLevel: PageTableLevel

    /// Bytes from `virtual` to the end of its page (at least 1).
    public var bytesToPageEnd: UInt64 { pageSize.bytes - (virtual & (pageSize.bytes - 1)) }
}

/// Why a translation failed. Entry contents are hostile guest data, so every
/// case carries enough context to explain itself.
public enum PageWalkError: Error, Equatable, CustomStringConvertible {
    /// Bits above the virtual-address width are not a sign extension.
    case nonCanonical(virtual: UInt64, bits: Int)
    /// The entry at `level` has P=0.
    case notPresent(virtual: UInt64, level: PageTableLevel, entryAddress: UInt64, entry: UInt64)
    /// PS=1 in a PML5/PML4 entry, where the bit is reserved (SDM tables 4-14, 4-15).
    case reservedPageSize(virtual: UInt64, level: PageTableLevel, entryAddress: UInt64, entry: UInt64)
    /// An entry could not be read from guest-physical memory.
    case unreadableEntry(virtual: UInt64, level: PageTableLevel, entryAddress: UInt64, reason: String)
    /// Control registers do not describe long-mode paging.
    case notLongMode(cr4: UInt64, efer: UInt64)

    public var description: String {
        switch self {
        case let .nonCanonical(va, bits):
            return "virtual address \(va.guestHex) is not canonical for \(bits)-bit addresses"
        case let .notPresent(va, level, at, entry):
            return "virtual address \(va.guestHex): \(level) entry at physical \(at.guestHex) is not present (\(entry.guestHex))"
        case let .reservedPageSize(va, level, at, entry):
            return "virtual address \(va.guestHex): \(level) entry at physical \(at.guestHex) sets the reserved PS bit (\(entry.guestHex))"
        case let .unreadableEntry(va, level, at, reason):
            return "virtual address \(va.guestHex): cannot read \(level) entry at physical \(at.guestHex): \(reason)"
        case let .notLongMode(cr4, efer):
            return "not long-mode paging (cr4 \(cr4.guestHex), efer \(efer.guestHex))"
        }
    }
}

/// Translates guest-virtual addresses by reading the guest's page tables from
/// guest-physical memory.
///
/// Every call walks afresh: the guest may change its page tables at any time
/// (compaction, huge-page collapse, CoW), so a caller that caches does so
/// knowingly. A walk reads at most one entry per level, so even cyclic page
/// tables end after 4 or 5 reads. Accessed/dirty bits are never written.
public struct PageWalker {
    /// Where the page tables live.
    public let memory: PhysicalMemory

    public init(memory: PhysicalMemory) {
        self.memory = memory
    }

    /// Translates `virtual` in the address space described by `context`.
    public func translate(_ virtual: UInt64, in context: PagingContext) throws -> Translation {
        guard context.isCanonical(virtual) else {
            throw PageWalkError.nonCanonical(virtual: virtual, bits: context.virtualAddressBits)
        }
        var table = context.root
        var writable = true, user = true, executable = true
        var level = context.fiveLevel ? PageTableLevel.pml5 : .pml4
        while true {
            let index = (virtual >> UInt64(level.indexShift)) & X86Paging.indexMask
            let entryAddress = table + index * X86Paging.entrySize
            let entry = try readEntry(at: entryAddress, level: level, virtual: virtual)
            guard entry & X86Paging.presentBit != 0 else {
                throw PageWalkError.notPresent(virtual: virtual, level: level, entryAddress: entryAddress, entry: entry)
            }
            writable = writable && entry & X86Paging.writableBit != 0
            user = user && entry & X86Paging.userBit != 0
            if context.noExecuteEnabled && entry & X86Paging.executeDisableBit != 0 { executable = false }
            let permissions = PagePermissions(present: true, writable: writable, user: user, executable: executable)

            let large = entry & X86Paging.pageSizeBit != 0
            switch level {
            case .pageTable:
                let base = entry & X86Paging.entryAddressMask
                return Translation(virtual: virtual, physical: base | (virtual & (PageSize.size4KiB.bytes - 1)),
                                   pageSize: .size4KiB, permissions: permissions,
                                   leafEntryAddress: entryAddress, leafLevel: level)
            case .pageDirectory where large:
                let base = entry & X86Paging.largePage2MiBMask
                return Translation(virtual: virtual, physical: base | (virtual & (PageSize.size2MiB.bytes - 1)),
                                   pageSize: .size2MiB, permissions: permissions,
                                   leafEntryAddress: entryAddress, leafLevel: level)
            case .pageDirectoryPointerTable where large:
                let base = entry & X86Paging.largePage1GiBMask
                return Translation(virtual: virtual, physical: base | (virtual & (PageSize.size1GiB.bytes - 1)),
                                   pageSize: .size1GiB, permissions: permissions,
                                   leafEntryAddress: entryAddress, leafLevel: level)
            case .pml4 where large, .pml5 where large:
                throw PageWalkError.reservedPageSize(virtual: virtual, level: level, entryAddress: entryAddress, entry: entry)
            default:
                table = entry & X86Paging.entryAddressMask
                // rawValue - 1 is always a valid level here: level 1 returned above.
                guard let next = PageTableLevel(rawValue: level.rawValue - 1) else {
                    throw PageWalkError.unreadableEntry(virtual: virtual, level: level, entryAddress: entryAddress,
                                                       reason: "no level below \(level)")
                }
                level = next
            }
        }
    }

    private func readEntry(at address: UInt64, level: PageTableLevel, virtual: UInt64) throws -> UInt64 {
        do {
            return try memory.readInteger(physical: address, as: UInt64.self)
        } catch {
            throw PageWalkError.unreadableEntry(virtual: virtual, level: level, entryAddress: address,
                                                reason: String(describing: error))
        }
    }
}
