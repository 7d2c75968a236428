import Guest

/// The zero page (`struct boot_params`, 4096 bytes) swvmm hands the kernel in %rsi.
///
/// Offsets are from Documentation/arch/x86/zero-page.rst (fields outside the
/// setup header) and boot.rst (the setup header, copied to 0x1F1).
public struct BootParams: Sendable, Equatable {
    /// Size of `struct boot_params`.
    public static let size = 4096
    static let acpiRootPointerOffset = 0x070   // 8: acpi_rsdp_addr (boot protocol 2.14+)
    static let extRamdiskImageOffset = 0x0C0   // 4: ramdisk address bits 63:32
    static let extRamdiskSizeOffset = 0x0C4    // 4: ramdisk size bits 63:32
    static let extCmdLinePtrOffset = 0x0C8     // 4: command line address bits 63:32
    static let e820EntriesOffset = 0x1E8       // 1
    static let e820TableOffset = 0x2D0         // E820_MAX_ENTRIES_ZEROPAGE entries of 20 bytes
    /// E820_MAX_ENTRIES_ZEROPAGE (zero-page.rst: e820_table[128]).
    public static let maxE820Entries = 128
    /// type_of_loader 0xFF: "undefined" boot loader (boot.rst, field 0x210).
    static let undefinedLoader: UInt8 = 0xFF
    /// heap_end_ptr from boot.rst's sample configuration (heap end 0xE000, minus
    /// 0x200). Only the real-mode setup code uses it, which swvmm never runs;
    /// set so the header is consistent with CAN_USE_HEAP.
    static let heapEndPointer: UInt16 = 0xE000 - 0x200

    /// The 4096 bytes.
    public private(set) var bytes: [UInt8]

    /// A zero page carrying a bzImage's setup header: only the header bytes
    /// `[0x1F1, 0x202 + byte at 0x201)` are copied, since newer kernels
    /// (6.1.88+) fill the rest of the first sector with 0xFF, which would be
    /// misread as zero-page fields.
    public init(setupHeader: ArraySlice<UInt8>) {
        var writer = ByteWriter(count: Self.size)
        writer.put(bytes: setupHeader, at: SetupHeader.startOffset)
        bytes = writer.bytes
        setCommonHeaderFields()
    }

    /// A zero page for a kernel without a setup header (ELF vmlinux): the
    /// fields the 64-bit entry reads, with protocol `SetupHeader.minimumVersion`.
    public init() {
        var writer = ByteWriter(count: Self.size)
        writer.put(SetupHeader.bootFlagMagic, at: SetupHeader.bootFlagOffset)
        writer.put(SetupHeader.headerMagic, at: SetupHeader.headerMagicOffset)
        writer.put(SetupHeader.minimumVersion, at: SetupHeader.versionOffset)
        writer.put(UInt32(KernelCommandLine.defaultKernelLimit), at: SetupHeader.cmdlineSizeOffset)
        bytes = writer.bytes
        setCommonHeaderFields()
    }

    private mutating func setCommonHeaderFields() {
        put(Self.undefinedLoader, at: SetupHeader.typeOfLoaderOffset)
        let flags = LoadFlags(rawValue: bytes[SetupHeader.loadflagsOffset]).union([.loadedHigh, .canUseHeap])
        put(flags.rawValue, at: SetupHeader.loadflagsOffset)
        put(Self.heapEndPointer, at: SetupHeader.heapEndPtrOffset)
    }

    /// Sets `cmd_line_ptr` (boot.rst 0x228) and `ext_cmd_line_ptr`.
    public mutating func setCommandLine(address: UInt64) {
        put(UInt32(truncatingIfNeeded: address), at: SetupHeader.cmdLinePtrOffset)
        put(UInt32(truncatingIfNeeded: address >> 32), at: Self.extCmdLinePtrOffset)
    }

    /// Sets `ramdisk_image`/`ramdisk_size` (boot.rst 0x218/0x21C) and their high halves.
    public mutating func setRamdisk(address: UInt64, size: UInt64) {
        put(UInt32(truncatingIfNeeded: address), at: SetupHeader.ramdiskImageOffset)
        put(UInt32(truncatingIfNeeded: size), at: SetupHeader.ramdiskSizeOffset)
        put(UInt32(truncatingIfNeeded: address >> 32), at: Self.extRamdiskImageOffset)
        put(UInt32(truncatingIfNeeded: size >> 32), at: Self.extRamdiskSizeOffset)
    }

    /// Sets `acpi_rsdp_addr`: where the kernel finds the ACPI RSDP without searching for it.
    public mutating func setACPIRootPointer(address: UInt64) {
        put(address, at: Self.acpiRootPointerOffset)
    }

    /// Sets `e820_entries` and `e820_table`.
    public mutating func setE820(_ entries: [E820Entry]) throws {
        guard entries.count <= Self.maxE820Entries else {
            throw BootError.tooManyE820Entries(count: entries.count, maximum: Self.maxE820Entries)
        }
        put(UInt8(entries.count), at: Self.e820EntriesOffset)
        for (index, entry) in entries.enumerated() {
            let offset = Self.e820TableOffset + index * E820Entry.encodedSize
            bytes.replaceSubrange(offset..<(offset + E820Entry.encodedSize), with: entry.encoded)
        }
    }

    private mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        bytes.replaceSubrange(offset ..< offset + MemoryLayout<T>.size, with: value.littleEndianBytes())
    }
}
