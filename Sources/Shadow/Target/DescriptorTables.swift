/// A vCPU's interrupt descriptor table register (IDTR): where the IDT is, in
/// guest-virtual memory of the kernel, and its limit (size in bytes - 1).
public struct DescriptorTables: Equatable, Sendable {
    /// Linear (kernel-virtual) address of the IDT.
    public var idtBase: UInt64
    /// IDTR limit: the offset of the table's last valid byte.
    public var idtLimit: UInt16

    public init(idtBase: UInt64, idtLimit: UInt16) {
        self.idtBase = idtBase
        self.idtLimit = idtLimit
    }
}
