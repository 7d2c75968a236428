/// Architectural constants for x86-64 paging, each named once with its source:
/// what the page walker reads and what swvmm's own page tables are built from.
///
/// Intel SDM Vol. 3A §4.5 ("4-Level Paging and 5-Level Paging"), tables 4-14
/// to 4-20 give the entry formats; CR4 and EFER bits are in `CR4` and `EFER`.
public enum X86Paging {
    /// Address bits 12..51 of CR3 and of every paging-structure entry. Bits
    /// above MAXPHYADDR are reserved (zero in a valid entry); 52 is the
    /// architectural maximum, so masking to 52 bits never drops a real
    /// address bit. Bits 52..62 are ignored/protection-key bits and bit 63 is
    /// XD (NX): none of them are part of the address (SDM tables 4-14..4-20).
    public static let entryAddressMask: UInt64 = 0x000F_FFFF_FFFF_F000
    /// Physical base of a 2 MiB page in a PDE with PS=1: bits 21..51; bit 12
    /// is PAT there, not an address bit (SDM table 4-18).
    public static let largePage2MiBMask: UInt64 = 0x000F_FFFF_FFE0_0000
    /// Physical base of a 1 GiB page in a PDPTE with PS=1: bits 30..51
    /// (SDM table 4-16).
    public static let largePage1GiBMask: UInt64 = 0x000F_FFFF_C000_0000

    /// Entry bit 0: present (P).
    public static let presentBit: UInt64 = 1 << 0
    /// Entry bit 1: read/write (R/W); 0 means writes are not allowed.
    public static let writableBit: UInt64 = 1 << 1
    /// Entry bit 2: user/supervisor (U/S); 0 means supervisor only.
    public static let userBit: UInt64 = 1 << 2
    /// Entry bit 7 in a PDPTE or PDE: page size (PS), maps a 1 GiB/2 MiB page.
    public static let pageSizeBit: UInt64 = 1 << 7
    /// Entry bit 63: execute-disable (XD/NX), honoured when EFER.NXE=1.
    public static let executeDisableBit: UInt64 = 1 << 63

    /// Each table holds 512 eight-byte entries: 9 index bits per level.
    public static let entriesPerTable = 512
    static let indexBits = 9
    static let indexMask: UInt64 = 0x1FF
    static let entrySize: UInt64 = 8
    /// Offset bits of a 4 KiB page.
    static let pageShift = 12

    /// With KPTI (PAGE_TABLE_ISOLATION) Linux allocates an 8 KiB, 8 KiB-aligned
    /// PGD: the kernel half at the lower 4 KiB and the user half at +4 KiB, so
    /// the two roots differ only in CR3 bit 12 (Linux arch/x86 PTI, as a fact).
    static let kptiUserRootBit: UInt64 = 1 << 12
}

/// How to translate a guest's virtual addresses: the top-level table's
/// physical address and whether paging has four or five levels.
public struct PagingContext: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// Guest-physical address of the PML4 (or PML5) table, already masked.
    public let root: UInt64
    /// True for 5-level paging (CR4.LA57): 57-bit virtual addresses.
    public let fiveLevel: Bool
    /// True when EFER.NXE is set; when false the XD bit is reserved and
    /// every present page is executable.
    public let noExecuteEnabled: Bool

    /// A context from a page-table root. `root` is masked to its address bits,
    /// so a raw CR3 (with PCID or flag bits) may be passed.
    public init(root: UInt64, fiveLevel: Bool, noExecuteEnabled: Bool = true) {
        self.root = root & X86Paging.entryAddressMask
        self.fiveLevel = fiveLevel
        self.noExecuteEnabled = noExecuteEnabled
    }

    /// A context from raw control-register values as a debugger or
    /// `KVM_GET_SREGS` reports them. CR3's low 12 bits (PCID, or PWT/PCD) and
    /// high flag bits are dropped. Throws unless long mode is active
    /// (EFER.LMA and CR4.PAE): only long-mode paging is supported.
    public init(cr3: UInt64, cr4: UInt64, efer: UInt64) throws {
        guard efer & EFER.lma != 0, cr4 & CR4.pae != 0 else {
            throw PageWalkError.notLongMode(cr4: cr4, efer: efer)
        }
        self.init(root: cr3,
                  fiveLevel: cr4 & CR4.la57 != 0,
                  noExecuteEnabled: efer & EFER.nxe != 0)
    }

    /// Number of paging levels: 4 or 5.
    public var levelCount: Int { fiveLevel ? 5 : 4 }

    /// Width of a canonical virtual address: 48 or 57 bits.
    public var virtualAddressBits: Int { fiveLevel ? 57 : 48 }

    /// True when bits 63..(width-1) of `address` are all equal (SDM §3.3.7.1).
    public func isCanonical(_ address: UInt64) -> Bool {
        let unused = UInt64(64 - virtualAddressBits)
        let signExtended = UInt64(bitPattern: Int64(bitPattern: address << unused) >> Int64(unused))
        return signExtended == address
    }

    /// The same context with the KPTI user-half root (see `kptiUserRoot`).
    public var kptiUser: PagingContext {
        PagingContext(root: kptiUserRoot(root), fiveLevel: fiveLevel, noExecuteEnabled: noExecuteEnabled)
    }

    public var description: String {
        "root \(root.guestHex), \(levelCount)-level"
    }
}

/// The page-table root of user mode under Linux KPTI (page-table isolation).
///
/// With `PAGE_TABLE_ISOLATION` the kernel gives each process an 8 KiB PGD: the
/// kernel page tables in the lower 4 KiB and the user ones (which map almost
/// no kernel memory) at +4 KiB, so the two roots differ in bit 12 only. The
/// argument may be a raw CR3; PCID bits are masked off. Applying it twice
/// gives the original root back, so it also maps a user root to the kernel one.
public func kptiUserRoot(_ cr3: UInt64) -> UInt64 {
    (cr3 & X86Paging.entryAddressMask) ^ X86Paging.kptiUserRootBit
}

/// Compares two page-table roots the way the CPU selects tables: address
/// bits only (PCID and flags ignored), optionally treating the two KPTI
/// halves of one process as the same root. Pass `allowKPTI: true` only for
/// guests known to run with KPTI: without it, the neighbouring page may be
/// another process's PGD.
public func sameAddressSpace(_ a: UInt64, _ b: UInt64, allowKPTI: Bool) -> Bool {
    let ra = a & X86Paging.entryAddressMask, rb = b & X86Paging.entryAddressMask
    return ra == rb || (allowKPTI && ra == kptiUserRoot(rb))
}
