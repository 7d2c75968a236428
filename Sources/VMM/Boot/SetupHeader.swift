import Guest

/// The real-mode setup header of a bzImage (`struct setup_header`).
///
/// Offsets are from the start of the image file, as tabulated in the kernel's
/// Documentation/arch/x86/boot.rst, "The Real-Mode Kernel Header". The same
/// bytes are copied to offset 0x1F1 of the zero page.
public struct SetupHeader: Sendable, Equatable {
    // MARK: Field offsets (boot.rst, "The Real-Mode Kernel Header")

    /// First byte of the header: `setup_sects` (boot.rst 0x1F1).
    public static let startOffset = 0x1F1
    static let setupSectsOffset = 0x1F1      // 1 byte
    static let rootFlagsOffset = 0x1F2       // 2
    static let syssizeOffset = 0x1F4         // 4, in 16-byte paragraphs (protocol 2.04+)
    static let vidModeOffset = 0x1FA         // 2
    static let rootDevOffset = 0x1FC         // 2
    static let bootFlagOffset = 0x1FE        // 2, 0xAA55
    /// `jump`: a short jump whose displacement byte (0x201) gives the header's end.
    static let jumpOffset = 0x200            // 2
    static let headerMagicOffset = 0x202     // 4, "HdrS"
    static let versionOffset = 0x206         // 2
    static let kernelVersionOffset = 0x20E   // 2, string pointer - 0x200
    static let typeOfLoaderOffset = 0x210    // 1
    static let loadflagsOffset = 0x211       // 1
    static let code32StartOffset = 0x214     // 4
    static let ramdiskImageOffset = 0x218    // 4
    static let ramdiskSizeOffset = 0x21C     // 4
    static let heapEndPtrOffset = 0x224      // 2
    static let cmdLinePtrOffset = 0x228      // 4
    static let initrdAddrMaxOffset = 0x22C   // 4
    static let kernelAlignmentOffset = 0x230 // 4
    static let relocatableKernelOffset = 0x234 // 1
    static let minAlignmentOffset = 0x235    // 1, as a power of two
    static let xloadflagsOffset = 0x236      // 2
    static let cmdlineSizeOffset = 0x238     // 4
    static let payloadOffsetOffset = 0x248   // 4, from the protected-mode code
    static let payloadLengthOffset = 0x24C   // 4
    static let prefAddressOffset = 0x258     // 8
    static let initSizeOffset = 0x260        // 4
    /// End of `struct setup_header` in boot_params: the next field (`edd_mbr_sig_buffer`) is at 0x290.
    static let headerAreaEnd = 0x290

    // MARK: Constants

    /// `boot_flag` value (boot.rst 0x1FE).
    public static let bootFlagMagic: UInt16 = 0xAA55
    /// `header` value "HdrS" read as a little-endian 32-bit integer (boot.rst 0x202).
    public static let headerMagic: UInt32 = 0x5372_6448
    /// Boot protocol 2.12 (Linux 3.8): the first with `xloadflags` and the 64-bit entry.
    public static let minimumVersion: UInt16 = 0x020C
    /// boot.rst: "setup_sects ... If this field is 0, the real value is 4."
    static let defaultSetupSects = 4
    /// The boot sector and each setup sector are 512 bytes.
    public static let sectorSize = 512

    // MARK: Fields

    /// Size of the real-mode setup code in 512-byte sectors, 0 already replaced by 4.
    public let setupSects: Int
    /// `root_flags` (0x1F2): nonzero means mount root read-only.
    public let rootFlags: UInt16
    /// `syssize` (0x1F4): protected-mode code size in 16-byte paragraphs.
    public let syssize: UInt32
    /// `vid_mode` (0x1FA).
    public let vidMode: UInt16
    /// `root_dev` (0x1FC).
    public let rootDevice: UInt16
    /// `version` (0x206): boot protocol, major in the high byte (0x020F = 2.15).
    public let version: UInt16
    /// `kernel_version` (0x20E): offset of the version string minus 0x200, 0 if absent.
    public let kernelVersionPointer: UInt16
    /// `loadflags` (0x211).
    public let loadflags: UInt8
    /// `code32_start` (0x214).
    public let code32Start: UInt32
    /// `initrd_addr_max` (0x22C): highest address the initrd may occupy.
    public let initrdAddrMax: UInt32
    /// `kernel_alignment` (0x230): alignment a relocatable kernel must be loaded at.
    public let kernelAlignment: UInt32
    /// `relocatable_kernel` (0x234).
    public let relocatableKernel: Bool
    /// `min_alignment` (0x235): log2 of the smallest acceptable alignment.
    public let minAlignment: UInt8
    /// `xloadflags` (0x236).
    public let xloadflags: UInt16
    /// `cmdline_size` (0x238): longest command line, without the terminating NUL.
    public let cmdlineSize: UInt32
    /// `payload_offset` (0x248), from the start of the protected-mode code.
    public let payloadOffset: UInt32
    /// `payload_length` (0x24C).
    public let payloadLength: UInt32
    /// `pref_address` (0x258): preferred load address of the protected-mode kernel.
    public let prefAddress: UInt64
    /// `init_size` (0x260): bytes the kernel needs from its load address until it has set itself up.
    public let initSize: UInt32
    /// End offset (exclusive) of the header in the file: 0x202 + the byte at 0x201.
    public let headerEnd: Int

    /// Parses and validates the header at the start of `bytes`.
    public init(parsing bytes: [UInt8]) throws {
        let reader = ByteReader(bytes)
        let bootFlag: UInt16 = try reader.integer(at: Self.bootFlagOffset, field: "boot_flag")
        guard bootFlag == Self.bootFlagMagic else { throw BootError.badBootFlag(found: bootFlag) }
        let magic: UInt32 = try reader.integer(at: Self.headerMagicOffset, field: "header")
        guard magic == Self.headerMagic else {
            throw BootError.notAKernel(reason: "no \"HdrS\" at 0x202 (boot protocol before 2.00)")
        }
        version = try reader.integer(at: Self.versionOffset, field: "version")
        guard version >= Self.minimumVersion else {
            throw BootError.protocolTooOld(version: version, required: Self.minimumVersion)
        }
        let jumpLength: UInt8 = try reader.integer(at: Self.jumpOffset + 1, field: "jump")
        headerEnd = Self.headerMagicOffset + Int(jumpLength)
        guard headerEnd <= Self.headerAreaEnd, headerEnd >= Self.initSizeOffset + 4 else {
            throw BootError.malformedHeader(field: "jump", detail: "header ends at 0x\(hex(headerEnd)), expected 0x\(hex(Self.initSizeOffset + 4))...0x\(hex(Self.headerAreaEnd))")
        }
        guard headerEnd <= bytes.count else {
            throw BootError.truncated(what: "setup header", needed: headerEnd, actual: bytes.count)
        }

        let sects: UInt8 = try reader.integer(at: Self.setupSectsOffset, field: "setup_sects")
        setupSects = sects == 0 ? Self.defaultSetupSects : Int(sects)
        rootFlags = try reader.integer(at: Self.rootFlagsOffset, field: "root_flags")
        syssize = try reader.integer(at: Self.syssizeOffset, field: "syssize")
        vidMode = try reader.integer(at: Self.vidModeOffset, field: "vid_mode")
        rootDevice = try reader.integer(at: Self.rootDevOffset, field: "root_dev")
        kernelVersionPointer = try reader.integer(at: Self.kernelVersionOffset, field: "kernel_version")
        loadflags = try reader.integer(at: Self.loadflagsOffset, field: "loadflags")
        code32Start = try reader.integer(at: Self.code32StartOffset, field: "code32_start")
        initrdAddrMax = try reader.integer(at: Self.initrdAddrMaxOffset, field: "initrd_addr_max")
        kernelAlignment = try reader.integer(at: Self.kernelAlignmentOffset, field: "kernel_alignment")
        relocatableKernel = try reader.integer(at: Self.relocatableKernelOffset, as: UInt8.self, field: "relocatable_kernel") != 0
        minAlignment = try reader.integer(at: Self.minAlignmentOffset, field: "min_alignment")
        xloadflags = try reader.integer(at: Self.xloadflagsOffset, field: "xloadflags")
        cmdlineSize = try reader.integer(at: Self.cmdlineSizeOffset, field: "cmdline_size")
        payloadOffset = try reader.integer(at: Self.payloadOffsetOffset, field: "payload_offset")
        payloadLength = try reader.integer(at: Self.payloadLengthOffset, field: "payload_length")
        prefAddress = try reader.integer(at: Self.prefAddressOffset, field: "pref_address")
        initSize = try reader.integer(at: Self.initSizeOffset, field: "init_size")

        guard xloadflags & XLoadFlags.kernel64.rawValue != 0 else {
            throw BootError.no64BitEntry(xloadflags: xloadflags)
        }
    }

    /// Offset in the file of the protected-mode kernel: after the boot sector and the setup sectors.
    public var protectedModeOffset: Int { (setupSects + 1) * Self.sectorSize }
    /// Size of the protected-mode kernel in the file (`syssize` paragraphs).
    public var protectedModeSize: Int { Int(syssize) * 16 }
    /// Decoded `loadflags`.
    public var loadFlags: LoadFlags { LoadFlags(rawValue: loadflags) }
    /// Decoded `xloadflags`.
    public var extendedLoadFlags: XLoadFlags { XLoadFlags(rawValue: xloadflags) }
}

/// `loadflags` bits (boot.rst, field 0x211).
public struct LoadFlags: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Protected-mode code is loaded at 0x100000 (bit 0).
    public static let loadedHigh = LoadFlags(rawValue: 1 << 0)
    /// KASLR was enabled by the kernel (bit 1, kernel-internal).
    public static let kaslr = LoadFlags(rawValue: 1 << 1)
    /// Suppress early messages (bit 5).
    public static let quiet = LoadFlags(rawValue: 1 << 5)
    /// Do not reload segment registers in the 32-bit entry (bit 6, obsolete).
    public static let keepSegments = LoadFlags(rawValue: 1 << 6)
    /// `heap_end_ptr` is valid (bit 7).
    public static let canUseHeap = LoadFlags(rawValue: 1 << 7)

    static let names: [(LoadFlags, String)] = [
        (.loadedHigh, "LOADED_HIGH"), (.kaslr, "KASLR_FLAG"), (.quiet, "QUIET_FLAG"),
        (.keepSegments, "KEEP_SEGMENTS"), (.canUseHeap, "CAN_USE_HEAP"),
    ]
}

/// `xloadflags` bits (boot.rst, field 0x236).
public struct XLoadFlags: OptionSet, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// Has the 64-bit entry at load address + 0x200 (bit 0).
    public static let kernel64 = XLoadFlags(rawValue: 1 << 0)
    /// Kernel, boot_params, command line and initrd may live above 4 GiB (bit 1).
    public static let canBeLoadedAbove4G = XLoadFlags(rawValue: 1 << 1)
    /// 32-bit EFI handover entry (bit 2).
    public static let efiHandover32 = XLoadFlags(rawValue: 1 << 2)
    /// 64-bit EFI handover entry (bit 3).
    public static let efiHandover64 = XLoadFlags(rawValue: 1 << 3)
    /// EFI kexec support (bit 4).
    public static let efiKexec = XLoadFlags(rawValue: 1 << 4)
    /// Kernel supports 5-level paging (bit 5).
    public static let fiveLevel = XLoadFlags(rawValue: 1 << 5)
    /// 5-level paging is enabled (bit 6).
    public static let fiveLevelEnabled = XLoadFlags(rawValue: 1 << 6)

    static let names: [(XLoadFlags, String)] = [
        (.kernel64, "XLF_KERNEL_64"), (.canBeLoadedAbove4G, "XLF_CAN_BE_LOADED_ABOVE_4G"),
        (.efiHandover32, "XLF_EFI_HANDOVER_32"), (.efiHandover64, "XLF_EFI_HANDOVER_64"),
        (.efiKexec, "XLF_EFI_KEXEC"), (.fiveLevel, "XLF_5LEVEL"), (.fiveLevelEnabled, "XLF_5LEVEL_ENABLED"),
    ]
}
