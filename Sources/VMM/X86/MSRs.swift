/// Model-specific registers swvmm initialises on every vCPU before boot.
///
/// Indices: Intel SDM Vol. 4, Table 2-2 ("IA-32 Architectural MSRs").
public enum BootMSRs {
    public static let sysenterCS: UInt32 = 0x174
    public static let sysenterESP: UInt32 = 0x175
    public static let sysenterEIP: UInt32 = 0x176
    /// IA32_STAR: SYSCALL/SYSRET segment selectors.
    public static let star: UInt32 = 0xC000_0081
    /// IA32_LSTAR: SYSCALL entry in 64-bit mode.
    public static let lstar: UInt32 = 0xC000_0082
    /// IA32_CSTAR: SYSCALL entry in compatibility mode.
    public static let cstar: UInt32 = 0xC000_0083
    /// IA32_FMASK: RFLAGS bits SYSCALL clears.
    public static let syscallMask: UInt32 = 0xC000_0084
    /// IA32_KERNEL_GS_BASE: the GS base SWAPGS exchanges.
    public static let kernelGSBase: UInt32 = 0xC000_0102
    /// IA32_TIME_STAMP_COUNTER.
    public static let tsc: UInt32 = 0x10
    /// IA32_MISC_ENABLE.
    public static let miscEnable: UInt32 = 0x1A0
    /// IA32_MISC_ENABLE bit 0: fast-strings enable (REP MOVS/STOS).
    public static let miscEnableFastStrings: UInt64 = 1 << 0
    /// IA32_MTRR_DEF_TYPE.
    public static let mtrrDefaultType: UInt32 = 0x2FF
    /// IA32_MTRR_DEF_TYPE bit 11: MTRRs enabled (SDM Vol. 3A §12.11.2.1).
    public static let mtrrEnable: UInt64 = 1 << 11
    /// Memory type 6: write-back (SDM Vol. 3A Table 12-8), the default type in bits 7:0.
    public static let memoryTypeWriteBack: UInt64 = 6

    /// (index, value) pairs for KVM_SET_MSRS: system-call MSRs and the TSC
    /// cleared, fast strings on, and MTRRs enabled with write-back as the
    /// default type (0x806) so that all RAM is cacheable.
    public static let entries: [(index: UInt32, value: UInt64)] = [
        (sysenterCS, 0), (sysenterESP, 0), (sysenterEIP, 0),
        (star, 0), (lstar, 0), (cstar, 0), (syscallMask, 0), (kernelGSBase, 0),
        (tsc, 0),
        (miscEnable, miscEnableFastStrings),
        (mtrrDefaultType, mtrrEnable | memoryTypeWriteBack),
    ]
}
