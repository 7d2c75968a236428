/// A descriptor-table register, GDTR or IDTR (Intel SDM Vol. 3A §2.4.1,
/// §6.10): where the table is, as a linear (kernel-virtual) address, and its
/// limit (size in bytes - 1). swvmm sets both at boot; shadow context reads
/// a guest's IDTR to find its page-fault entry.
public struct DescriptorTableRegister: Equatable, Sendable {
    /// Linear address of the table.
    public var base: UInt64
    /// The offset of the table's last valid byte.
    public var limit: UInt16

    public init(base: UInt64, limit: UInt16) {
        self.base = base
        self.limit = limit
    }
}
