import Guest

/// Where swvmm puts things in guest-physical memory when it boots Linux.
///
/// One table, so the e820 map, the loaders and the device models agree. The
/// low addresses follow the PC conventions the Linux boot protocol expects
/// (Documentation/arch/x86/boot.rst, "Memory layout"); the high ones are the
/// usual x86 platform addresses (Intel SDM Vol. 3A §11.4.1 for the local APIC,
/// the 82093AA IOAPIC datasheet for the IOAPIC).
public enum Layout {
    // MARK: Low memory (below 1 MiB)

    /// The GDT swvmm installs before entering the kernel (4 descriptors).
    public static let gdtAddress: UInt64 = 0x500
    /// An empty IDT: the kernel installs its own before enabling interrupts.
    public static let idtAddress: UInt64 = 0x520
    /// `struct boot_params`, the "zero page" (boot protocol: its address goes in %rsi).
    public static let bootParamsAddress: UInt64 = 0x7000
    /// Root of the identity page tables (PML4); the PDPT and page directories follow.
    public static let pageTableRootAddress: UInt64 = 0x9000
    /// The kernel command line (boot protocol: `cmd_line_ptr`), below the EBDA.
    public static let commandLineAddress: UInt64 = 0x20000
    /// The most command-line bytes swvmm will place (the kernel's own limit,
    /// `cmdline_size` in the setup header, is usually smaller and is checked too).
    public static let commandLineCapacity: UInt64 = 0x10000
    /// Start of the Extended BIOS Data Area: the MP floating pointer and MP
    /// table live here (MP spec 1.4 §4: the first KiB of the EBDA is searched).
    public static let ebdaStart: UInt64 = 0x9_FC00
    /// End of conventional memory; 0xA0000..0x100000 is VGA and BIOS ROM space.
    public static let conventionalMemoryEnd: UInt64 = 0xA_0000
    /// The ACPI tables (RSDP first), in the BIOS area that ACPI 6.4 §5.2.5.1
    /// says an OS searches for the RSDP (0xE0000..0xFFFFF); reserved in the e820 map.
    public static let acpiTablesAddress: UInt64 = 0xE_0000
    /// 1 MiB: where "high memory" starts and a non-relocatable kernel is loaded.
    public static let highMemoryStart: UInt64 = 0x10_0000

    // MARK: The 32-bit MMIO hole

    /// RAM above this address is moved above 4 GiB, leaving room for device MMIO.
    public static let mmioHoleStart: UInt64 = 0xC000_0000
    /// 4 GiB: the end of the 32-bit address space and of the MMIO hole.
    public static let mmioHoleEnd: UInt64 = 0x1_0000_0000
    /// KVM_SET_IDENTITY_MAP_ADDR: one page KVM needs for real-mode emulation on
    /// Intel; placed in the hole so it never overlaps RAM.
    public static let identityMapAddress: UInt64 = 0xFFFB_C000
    /// KVM_SET_TSS_ADDR: three pages KVM needs on Intel, right after the identity map.
    public static let tssAddress: UInt64 = 0xFFFB_D000
    /// Default local APIC base (IA32_APIC_BASE reset value, Intel SDM Vol. 3A §11.4.1).
    public static let localAPICAddress: UInt64 = 0xFEE0_0000
    /// Default IOAPIC base (82093AA datasheet; what KVM's in-kernel IOAPIC decodes).
    public static let ioAPICAddress: UInt64 = 0xFEC0_0000

    /// x86 small page size.
    public static let pageSize = PageSize.size4KiB.bytes
}
