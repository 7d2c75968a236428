/// A vCPU's interrupt descriptor table register (IDTR, Intel SDM Vol. 3A
/// §6.10): where the IDT is, in guest-virtual memory of the kernel, and its
/// limit (size in bytes - 1).
public struct IDTRegister: Equatable, Sendable {
    /// Linear (kernel-virtual) address of the IDT.
    public var base: UInt64
    /// IDTR limit: the offset of the table's last valid byte.
    public var limit: UInt16

    public init(base: UInt64, limit: UInt16) {
        self.base = base
        self.limit = limit
    }
}
