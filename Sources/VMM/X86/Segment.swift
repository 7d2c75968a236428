/// A segment as the CPU caches it, and its 8-byte GDT descriptor form.
///
/// Plain Swift: the KVM layer converts it to `kvm_segment`. Descriptor layout
/// from Intel SDM Vol. 3A §3.4.5, Figure 3-8 ("Segment Descriptor").
public struct Segment: Sendable, Equatable {
    /// Segment base (bits 31:0 fit a descriptor; the cache holds 64 bits).
    public var base: UInt64
    /// The 20-bit descriptor limit, in bytes or, when `g` is set, in 4 KiB units.
    public var limit: UInt32
    /// The selector that loads this segment (index << 3 | TI | RPL).
    public var selector: UInt16
    /// Type field (4 bits): for code/data, bit 3 = code, bit 1 = readable/writable, bit 0 = accessed.
    public var type: UInt8
    /// P: present.
    public var present: Bool
    /// DPL: descriptor privilege level (0-3).
    public var dpl: UInt8
    /// D/B: default operation size 32-bit (must be 0 for 64-bit code).
    public var db: Bool
    /// S: code/data (true) rather than system segment.
    public var s: Bool
    /// L: 64-bit code segment.
    public var l: Bool
    /// G: limit counts 4 KiB pages.
    public var g: Bool
    /// AVL: available to software.
    public var avl: Bool

    public init(base: UInt64 = 0, limit: UInt32 = 0, selector: UInt16 = 0, type: UInt8 = 0, present: Bool = false,
                dpl: UInt8 = 0, db: Bool = false, s: Bool = false, l: Bool = false, g: Bool = false, avl: Bool = false) {
        self.base = base
        self.limit = limit
        self.selector = selector
        self.type = type
        self.present = present
        self.dpl = dpl
        self.db = db
        self.s = s
        self.l = l
        self.g = g
        self.avl = avl
    }

    /// The limit in bytes, as `kvm_segment.limit` expects it (the hidden part of
    /// the register: G expands the 20-bit field to `limit << 12 | 0xFFF`).
    public var byteLimit: UInt32 { g ? (limit << 12) | 0xFFF : limit }

    // Bit positions in the 64-bit descriptor (SDM Vol. 3A Figure 3-8).
    static let typeShift: UInt64 = 40
    static let sBit: UInt64 = 1 << 44
    static let dplShift: UInt64 = 45
    static let presentBit: UInt64 = 1 << 47
    static let avlBit: UInt64 = 1 << 52
    static let lBit: UInt64 = 1 << 53
    static let dbBit: UInt64 = 1 << 54
    static let gBit: UInt64 = 1 << 55

    /// The 8-byte descriptor (base bits above 31 and `selector` are not part of it).
    public var descriptor: UInt64 {
        let limit = UInt64(self.limit & 0xF_FFFF)
        let base = self.base & 0xFFFF_FFFF
        var value = (limit & 0xFFFF) | ((limit >> 16) << 48)
        value |= (base & 0xFF_FFFF) << 16 | ((base >> 24) & 0xFF) << 56
        value |= UInt64(type & 0xF) << Self.typeShift | UInt64(dpl & 0x3) << Self.dplShift
        if s { value |= Self.sBit }
        if present { value |= Self.presentBit }
        if avl { value |= Self.avlBit }
        if l { value |= Self.lBit }
        if db { value |= Self.dbBit }
        if g { value |= Self.gBit }
        return value
    }

    /// Decodes a descriptor; `selector` is supplied by the caller (it is where the descriptor sits).
    public init(descriptor value: UInt64, selector: UInt16) {
        self.init(base: (value >> 16) & 0xFF_FFFF | ((value >> 56) & 0xFF) << 24,
                  limit: UInt32(value & 0xFFFF | ((value >> 48) & 0xF) << 16),
                  selector: selector,
                  type: UInt8((value >> Self.typeShift) & 0xF),
                  present: value & Self.presentBit != 0,
                  dpl: UInt8((value >> Self.dplShift) & 0x3),
                  db: value & Self.dbBit != 0,
                  s: value & Self.sBit != 0,
                  l: value & Self.lBit != 0,
                  g: value & Self.gBit != 0,
                  avl: value & Self.avlBit != 0)
    }
}
