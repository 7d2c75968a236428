import Guest

/// One 64-bit IDT gate descriptor, decoded (Intel SDM Vol. 3A §6.14.1,
/// figure 6-8 "64-Bit IDT Gate Descriptors").
struct IDTGate: Equatable {
    /// Each gate is 16 bytes in IA-32e mode (SDM §6.14.1).
    static let size: UInt64 = 16
    /// Vector 14 is the page-fault exception #PF (SDM Vol. 3A §6.15, table 6-1).
    static let pageFaultVector: UInt64 = 14
    /// Type 0xE: 64-bit interrupt gate; 0xF: 64-bit trap gate (SDM Vol. 3A §3.5, table 3-2).
    static let interruptGateType: UInt8 = 0xE, trapGateType: UInt8 = 0xF

    let offset: UInt64
    let selector: UInt16
    let type: UInt8
    let present: Bool

    /// Decodes the two quadwords of a gate: offset 15..0 in bits 0-15 of the
    /// first, the selector in bits 16-31, the type in bits 40-43, P in bit
    /// 47, offset 31..16 in bits 48-63, and offset 63..32 in the low 32 bits
    /// of the second quadword.
    init(low: UInt64, high: UInt64) {
        offset = (low & 0xFFFF) | ((low >> 48) & 0xFFFF) << 16 | (high & 0xFFFF_FFFF) << 32
        selector = UInt16(truncatingIfNeeded: low >> 16)
        type = UInt8(truncatingIfNeeded: (low >> 40) & 0xF)
        present = (low >> 47) & 1 == 1
    }

    /// Reads gate `vector` of the IDT described by `idtr` through `view`
    /// (a kernel paging context) and returns its handler address.
    static func handler(vector: UInt64, idtr: DescriptorTableRegister, view: GuestView) throws -> UInt64 {
        let base = idtr.base
        guard UInt64(idtr.limit) >= vector * size + size - 1 else {
            throw ShadowError.badPageFaultGate(idtBase: base, reason: "IDT limit \(idtr.limit) does not cover vector \(vector)")
        }
        let address = base &+ vector * size
        let low: UInt64, high: UInt64
        do {
            low = try view.readInteger(virtual: address, as: UInt64.self)
            high = try view.readInteger(virtual: address &+ 8, as: UInt64.self)
        } catch {
            throw ShadowError.badPageFaultGate(idtBase: base, reason: "cannot read gate \(vector): \(error)")
        }
        let gate = IDTGate(low: low, high: high)
        guard gate.present, gate.type == interruptGateType || gate.type == trapGateType else {
            throw ShadowError.badPageFaultGate(idtBase: base, reason: "gate \(vector) is not a present interrupt/trap gate (type \(gate.type))")
        }
        guard view.context.isCanonical(gate.offset), gate.offset != 0 else {
            throw ShadowError.badPageFaultGate(idtBase: base, reason: "gate \(vector) points to non-canonical \(gate.offset.guestHex)")
        }
        return gate.offset
    }
}
