import Guest

/// A kernel swvmm can boot: a bzImage (64-bit boot protocol) or an ELF vmlinux.
public enum KernelImage: Sendable {
    case bzImage(BzImage)
    case elf(ElfKernel)

    /// Parses the kernel file at `path`, reading only its headers: the parts
    /// loaded into the guest are read from the file when they are loaded.
    public static func load(path: String) throws -> KernelImage {
        let file = try ImageFile(path: path)
        let start = try file.read(offset: 0, count: min(file.size, SetupHeader.headerMagicOffset + 4), what: "header")
        if start.starts(with: ELFImage.magic) { return .elf(try ElfKernel(file: file)) }
        try checkBzImageMagic(start)
        return .bzImage(try BzImage(file: file))
    }

    /// Throws `notAKernel` unless `start` (the file's first bytes) has "HdrS" at 0x202.
    static func checkBzImageMagic(_ start: [UInt8]) throws {
        let magicEnd = SetupHeader.headerMagicOffset + 4
        guard start.count >= magicEnd else {
            throw BootError.notAKernel(reason: "\(start.count) bytes is too short for a boot sector and setup header")
        }
        let magic: UInt32 = try ByteReader(start).integer(at: SetupHeader.headerMagicOffset, field: "header")
        guard magic == SetupHeader.headerMagic else {
            throw BootError.notAKernel(reason: "no ELF magic and no \"HdrS\" at 0x202")
        }
    }

    /// The longest command line the kernel accepts, without the NUL: a
    /// bzImage's `cmdline_size`, x86's COMMAND_LINE_SIZE for a vmlinux.
    public var commandLineLimit: Int {
        switch self {
        case let .bzImage(image): return Int(image.header.cmdlineSize)
        case .elf: return KernelCommandLine.defaultKernelLimit
        }
    }

    /// Lines for `swvmm image-info`.
    public func imageInfoReport() -> [(String, String)] {
        switch self {
        case let .bzImage(image): return image.imageInfoReport()
        case let .elf(kernel):
            return [("format", "ELF vmlinux (x86-64)"),
                    ("entry point", "0x\(hex(kernel.entryPoint))"),
                    ("load segments", "\(kernel.segments.count)"),
                    ("physical range", "0x\(hex(kernel.lowestAddress))-0x\(hex(kernel.end))")]
        }
    }
}
