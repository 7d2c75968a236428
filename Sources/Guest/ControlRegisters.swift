/// Control-register and EFER bits: the ones swvmm sets to enter 64-bit mode
/// directly and the ones a page walk reads.
///
/// CR0 and CR4: Intel SDM Vol. 3A §2.5, Figure 2-7. EFER (MSR 0xC0000080):
/// SDM Vol. 3A §2.2.1, Table 2-1, and Vol. 4 Table 2-2.
public enum CR0 {
    /// Protection enable (bit 0).
    public static let pe: UInt64 = 1 << 0
    /// Monitor coprocessor (bit 1).
    public static let mp: UInt64 = 1 << 1
    /// x87 emulation (bit 2).
    public static let em: UInt64 = 1 << 2
    /// Task switched (bit 3).
    public static let ts: UInt64 = 1 << 3
    /// Extension type, hard-wired to 1 on modern CPUs (bit 4).
    public static let et: UInt64 = 1 << 4
    /// Native x87 error reporting (bit 5); VMX requires it set.
    public static let ne: UInt64 = 1 << 5
    /// Write protect in supervisor mode (bit 16).
    public static let wp: UInt64 = 1 << 16
    /// Alignment mask (bit 18).
    public static let am: UInt64 = 1 << 18
    /// Not write-through (bit 29).
    public static let nw: UInt64 = 1 << 29
    /// Cache disable (bit 30).
    public static let cd: UInt64 = 1 << 30
    /// Paging (bit 31).
    public static let pg: UInt64 = 1 << 31
}

public enum CR4 {
    /// Page size extensions (bit 4).
    public static let pse: UInt64 = 1 << 4
    /// Physical address extension, required for long mode (bit 5).
    public static let pae: UInt64 = 1 << 5
    /// Global pages (bit 7).
    public static let pge: UInt64 = 1 << 7
    /// FXSAVE/FXRSTOR and SSE enabled by the OS (bit 9).
    public static let osfxsr: UInt64 = 1 << 9
    /// Unmasked SIMD exceptions enabled (bit 10).
    public static let osxmmexcpt: UInt64 = 1 << 10
    /// 5-level paging (bit 12).
    public static let la57: UInt64 = 1 << 12
}

public enum EFER {
    /// The MSR index of IA32_EFER.
    public static let msr: UInt32 = 0xC000_0080
    /// SYSCALL enable (bit 0).
    public static let sce: UInt64 = 1 << 0
    /// Long mode enable (bit 8).
    public static let lme: UInt64 = 1 << 8
    /// Long mode active (bit 10); set by the CPU, given explicitly to KVM_SET_SREGS.
    public static let lma: UInt64 = 1 << 10
    /// No-execute enable (bit 11).
    public static let nxe: UInt64 = 1 << 11
}
