import Guest

/// The boot GDT: what the 64-bit boot protocol asks for.
///
/// boot.rst, "64-bit Boot Protocol": "__BOOT_CS(0x10) and __BOOT_DS(0x18)
/// must be a flat 4G segment ... with execute/read permission for
/// __BOOT_CS and read/write permission for __BOOT_DS". Entry 1 (0x08) stays
/// null, as in Linux's own boot GDT.
///
/// No TSS descriptor: a 64-bit one takes 16 bytes and Layout leaves room for
/// four 8-byte entries. KVM takes TR's hidden state from `taskRegister`
/// (KVM_SET_SREGS) and never reads the GDT for it; Linux loads its own TR early.
public enum GDT {
    /// Code segment selector (__BOOT_CS).
    public static let codeSelector: UInt16 = 0x10
    /// Data segment selector (__BOOT_DS).
    public static let dataSelector: UInt16 = 0x18
    /// Type 0xB: execute/read, accessed. The accessed bit is set so the
    /// descriptor matches the cached state (VMX requires an accessed CS/SS,
    /// SDM Vol. 3C §26.3.1.2) and the CPU never writes it back.
    static let codeType: UInt8 = 0xB
    /// Type 0x3: read/write, accessed.
    static let dataType: UInt8 = 0x3
    /// Type 0xB for a system descriptor: busy 64-bit TSS (SDM Vol. 3A Table 3-2).
    static let busyTSSType: UInt8 = 0xB

    /// Flat 64-bit kernel code: L=1, D=0, G=1, limit 0xFFFFF.
    public static let code = Segment(base: 0, limit: 0xF_FFFF, selector: codeSelector, type: codeType,
                                     present: true, dpl: 0, db: false, s: true, l: true, g: true)
    /// Flat data: D/B=1, G=1, limit 0xFFFFF.
    public static let data = Segment(base: 0, limit: 0xF_FFFF, selector: dataSelector, type: dataType,
                                     present: true, dpl: 0, db: true, s: true, l: false, g: true)
    /// Task register state for KVM (not in the GDT, see above): a present busy TSS.
    public static let taskRegister = Segment(base: 0, limit: 0xFFFF, selector: 0, type: busyTSSType, present: true)

    /// The descriptors, index = selector >> 3.
    public static let entries: [UInt64] = [0, 0, code.descriptor, data.descriptor]
    /// GDTR limit: size in bytes minus one.
    public static var limit: UInt16 { UInt16(entries.count * 8 - 1) }

    /// Writes the table at `Layout.gdtAddress`, and an empty IDT at `Layout.idtAddress`.
    public static func write(into memory: PhysicalMemory) throws {
        for (index, entry) in entries.enumerated() {
            try memory.writeInteger(physical: Layout.gdtAddress + UInt64(index * 8), entry)
        }
        try memory.writeInteger(physical: Layout.idtAddress, UInt64(0))
    }
}
