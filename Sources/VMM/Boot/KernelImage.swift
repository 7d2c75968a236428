import Glibc

/// A kernel swvmm can boot: a bzImage (64-bit boot protocol) or an ELF vmlinux.
public enum KernelImage: Sendable {
    case bzImage(BzImage)
    case elf(ElfKernel)

    /// "\x7FELF" (ELF gABI, e_ident[EI_MAG0..3]).
    static let elfMagic: [UInt8] = [0x7F, 0x45, 0x4C, 0x46]

    /// Parses the kernel file at `path`, reading only its headers: the parts
    /// loaded into the guest are read from the file when they are loaded.
    public static func load(path: String) throws -> KernelImage {
        let file = try ImageFile(path: path)
        let start = try file.read(offset: 0, count: min(file.size, SetupHeader.headerMagicOffset + 4), what: "header")
        if start.starts(with: elfMagic) { return .elf(try ElfKernel(file: file)) }
        try checkBzImageMagic(start)
        return .bzImage(try BzImage(file: file))
    }

    /// Parses kernel image bytes, deciding the format from the magic numbers.
    public static func parse(bytes: [UInt8]) throws -> KernelImage {
        if bytes.starts(with: elfMagic) { return .elf(try ElfKernel(bytes: bytes)) }
        try checkBzImageMagic(bytes)
        return .bzImage(try BzImage(bytes: bytes))
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

    /// The whole file at `path`, read with open(2)/read(2).
    public static func readFile(path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BootError.fileUnreadable(path: path, errno: errno) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw BootError.fileUnreadable(path: path, errno: errno) }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return read(fd, base + done, buffer.count - done)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw BootError.fileUnreadable(path: path, errno: errno)
            }
            if count == 0 { break }  // the file shrank while we read it
            done += count
        }
        bytes.removeLast(bytes.count - done)  // in place: no second copy of the file
        return bytes
    }
}
