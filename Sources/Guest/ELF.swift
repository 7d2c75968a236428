import CLibELF
import Glibc

/// Errors reading an ELF image.
public enum ELFError: Error, Equatable, CustomStringConvertible {
    /// libelf refused the image; `message` is `elf_errmsg`.
    case libelf(operation: String, message: String)
    /// The bytes are not an ELF object (`elf_kind` is not ELF_K_ELF).
    case notELF
    /// A header points outside the image.
    case outOfBounds(what: String, offset: UInt64, size: UInt64, imageSize: Int)

    public var description: String {
        switch self {
        case let .libelf(operation, message): return "\(operation) failed: \(message)"
        case .notELF: return "not an ELF file"
        case let .outOfBounds(what, offset, size, imageSize):
            return "\(what) at offset \(offset) + \(size) bytes lies outside the \(imageSize)-byte image"
        }
    }
}

/// One program header (`Elf64_Phdr`, widened from ELF32 when needed).
public struct ELFProgramHeader: Sendable, Equatable {
    /// PT_LOAD: a segment to be loaded (ELF gABI).
    public static let typeLoad = UInt32(PT_LOAD)
    /// PT_NOTE.
    public static let typeNote = UInt32(PT_NOTE)
    /// PF_X in `flags`: the segment is executable.
    public static let flagExecute = UInt32(PF_X)

    public let type: UInt32
    public let flags: UInt32
    public let offset: UInt64
    public let virtualAddress: UInt64
    public let physicalAddress: UInt64
    public let fileSize: UInt64
    public let memorySize: UInt64
    public let alignment: UInt64
}

/// One section header, with its name resolved.
public struct ELFSection: Sendable, Equatable {
    /// SHT_PROGBITS: program-defined contents (.text, .data).
    public static let typeProgBits = UInt32(SHT_PROGBITS)
    /// SHT_NOBITS: occupies no file space (.bss).
    public static let typeNoBits = UInt32(SHT_NOBITS)

    public let name: String
    public let type: UInt32
    public let flags: UInt64
    public let address: UInt64
    public let offset: UInt64
    public let size: UInt64
}

/// A read-only ELF image read through libelf: the one ELF reader of swvmm.
///
/// Two sources: bytes in memory (copied into a buffer this object owns, which
/// libelf's `elf_memory` keeps pointing into; the vDSO locator's guest pages)
/// or an open file (`elf_begin` with ELF_C_READ_MMAP, which maps the file
/// lazily, so parsing a 10+ MiB vmlinux touches only its header pages).
/// Every offset libelf hands back is checked against the image size before
/// use, because images may come from guest memory or a user's file.
public final class ELFImage {
    /// ELFCLASS32 = 1, ELFCLASS64 = 2 (`e_ident[EI_CLASS]`).
    public let elfClass: UInt8
    /// `e_ident[EI_DATA]`: ELFDATA2LSB (1) or ELFDATA2MSB (2).
    public let dataEncoding: UInt8
    /// `e_machine` (EM_X86_64 = 62).
    public let machine: UInt16
    /// `e_type` (ET_EXEC = 2, ET_DYN = 3).
    public let type: UInt16
    /// `e_entry`.
    public let entry: UInt64
    /// Program headers in file order.
    public let programHeaders: [ELFProgramHeader]
    /// Sections in file order (empty if the image has no section headers).
    public let sections: [ELFSection]
    /// Size of the image in bytes: every header's range lies within it.
    public let imageSize: Int

    /// ELFCLASS64 (`e_ident[EI_CLASS]`, ELF gABI).
    public static let class64 = UInt8(ELFCLASS64)
    /// ELFDATA2LSB: little-endian (`e_ident[EI_DATA]`).
    public static let dataLittleEndian = UInt8(ELFDATA2LSB)
    /// EM_X86_64 (ELF x86-64 psABI).
    public static let machineX86_64 = UInt16(EM_X86_64)
    /// ET_DYN: a shared object (the vDSO).
    public static let typeSharedObject = UInt16(ET_DYN)
    /// "\x7FELF" (`e_ident[EI_MAG0..3]`).
    public static let magic: [UInt8] = [0x7F, 0x45, 0x4C, 0x46]

    /// The buffer `elf_memory` reads (nil for a file).
    private let buffer: UnsafeMutableRawBufferPointer?
    private let elf: OpaquePointer

    /// `elf_version` must be called once before any other libelf function; a
    /// global's initialiser runs exactly once, thread-safely.
    private static let libraryReady: Bool = elf_version(UInt32(EV_CURRENT)) != UInt32(EV_NONE)

    /// Parses `bytes` as an ELF image.
    public convenience init<Bytes: Collection>(bytes: Bytes) throws where Bytes.Element == UInt8 {
        guard Self.libraryReady else { throw ELFError.libelf(operation: "elf_version", message: Self.lastError()) }
        let count = bytes.count
        guard count >= Self.magic.count, bytes.starts(with: Self.magic) else { throw ELFError.notELF }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        _ = buffer.initializeMemory(as: UInt8.self, from: bytes)
        guard let base = buffer.baseAddress,
              let elf = elf_memory(base.assumingMemoryBound(to: CChar.self), count) else {
            buffer.deallocate()
            throw ELFError.libelf(operation: "elf_memory", message: Self.lastError())
        }
        try self.init(elf: elf, buffer: buffer, imageSize: count)
    }

    /// Parses the ELF file open on `fileDescriptor` (`size` bytes long),
    /// mapping it lazily rather than reading it. The descriptor stays the
    /// caller's; it must stay open while this object lives.
    public convenience init(fileDescriptor: Int32, size: Int) throws {
        guard Self.libraryReady else { throw ELFError.libelf(operation: "elf_version", message: Self.lastError()) }
        guard let elf = elf_begin(fileDescriptor, ELF_C_READ_MMAP, nil) else {
            throw ELFError.libelf(operation: "elf_begin", message: Self.lastError())
        }
        try self.init(elf: elf, buffer: nil, imageSize: size)
    }

    /// Reads the headers of `elf`; takes ownership of it and of `buffer`.
    private init(elf: OpaquePointer, buffer: UnsafeMutableRawBufferPointer?, imageSize: Int) throws {
        self.buffer = buffer
        self.elf = elf
        self.imageSize = imageSize
        do {
            guard elf_kind(elf) == ELF_K_ELF else { throw ELFError.notELF }
            var header = GElf_Ehdr()
            guard gelf_getehdr(elf, &header) != nil else {
                throw ELFError.libelf(operation: "gelf_getehdr", message: Self.lastError())
            }
            elfClass = header.e_ident.4
            dataEncoding = header.e_ident.5
            machine = header.e_machine
            type = header.e_type
            entry = header.e_entry
            programHeaders = try Self.readProgramHeaders(elf, imageSize: imageSize)
            sections = try Self.readSections(elf, imageSize: imageSize)
        } catch {
            elf_end(elf)
            buffer?.deallocate()
            throw error
        }
    }

    deinit {
        elf_end(elf)
        buffer?.deallocate()
    }

    /// The PT_LOAD program headers.
    public var loadSegments: [ELFProgramHeader] { programHeaders.filter { $0.type == ELFProgramHeader.typeLoad } }

    /// Whether this is a little-endian ELFCLASS64 x86-64 object.
    public var isX86_64: Bool {
        elfClass == Self.class64 && dataEncoding == Self.dataLittleEndian && machine == Self.machineX86_64
    }

    /// The file bytes of a segment (`filesz` bytes at `offset`, checked against the image).
    public func contents(of segment: ELFProgramHeader) throws -> [UInt8] {
        try slice(offset: segment.offset, size: segment.fileSize)
    }

    /// The first section called `name`, if any.
    public func section(named name: String) -> ELFSection? { sections.first { $0.name == name } }

    /// The bytes of the section called `name` (empty for SHT_NOBITS), or nil if there is none.
    public func sectionContents(named name: String) throws -> [UInt8]? {
        guard let section = section(named: name) else { return nil }
        if section.type == ELFSection.typeNoBits { return [] }
        return try slice(offset: section.offset, size: section.size)
    }

    /// `size` bytes at `offset`, a range the parse checked against `imageSize`.
    private func slice(offset: UInt64, size: UInt64) throws -> [UInt8] {
        var available = 0
        guard let raw = elf_rawfile(elf, &available) else {
            throw ELFError.libelf(operation: "elf_rawfile", message: Self.lastError())
        }
        try Self.checkBounds("contents", offset: offset, size: size, imageSize: available)
        return Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(raw) + Int(offset), count: Int(size)))
    }

    /// Throws `outOfBounds` unless `offset + size` lies within `imageSize` bytes.
    public static func checkBounds(_ what: String, offset: UInt64, size: UInt64, imageSize: Int) throws {
        let (end, overflow) = offset.addingReportingOverflow(size)
        guard !overflow, end <= UInt64(imageSize) else {
            throw ELFError.outOfBounds(what: what, offset: offset, size: size, imageSize: imageSize)
        }
    }

    private static func readProgramHeaders(_ elf: OpaquePointer, imageSize: Int) throws -> [ELFProgramHeader] {
        var count = 0
        guard elf_getphdrnum(elf, &count) == 0 else {
            throw ELFError.libelf(operation: "elf_getphdrnum", message: lastError())
        }
        var headers: [ELFProgramHeader] = []
        for index in 0..<count {
            var raw = GElf_Phdr()
            guard gelf_getphdr(elf, Int32(index), &raw) != nil else {
                throw ELFError.libelf(operation: "gelf_getphdr(\(index))", message: lastError())
            }
            let header = ELFProgramHeader(type: raw.p_type, flags: raw.p_flags, offset: raw.p_offset,
                                          virtualAddress: raw.p_vaddr, physicalAddress: raw.p_paddr,
                                          fileSize: raw.p_filesz, memorySize: raw.p_memsz, alignment: raw.p_align)
            try checkBounds("program header \(index)", offset: header.offset, size: header.fileSize, imageSize: imageSize)
            headers.append(header)
        }
        return headers
    }

    private static func readSections(_ elf: OpaquePointer, imageSize: Int) throws -> [ELFSection] {
        var namesIndex = 0
        guard elf_getshdrstrndx(elf, &namesIndex) == 0 else {
            throw ELFError.libelf(operation: "elf_getshdrstrndx", message: lastError())
        }
        var sections: [ELFSection] = []
        var scn = elf_nextscn(elf, nil)
        while let current = scn {
            var raw = GElf_Shdr()
            guard gelf_getshdr(current, &raw) != nil else {
                throw ELFError.libelf(operation: "gelf_getshdr", message: lastError())
            }
            let name = elf_strptr(elf, namesIndex, Int(raw.sh_name)).map { String(cString: $0) } ?? ""
            let section = ELFSection(name: name, type: raw.sh_type, flags: raw.sh_flags,
                                     address: raw.sh_addr, offset: raw.sh_offset, size: raw.sh_size)
            if section.type != ELFSection.typeNoBits {
                try checkBounds("section \(name.isEmpty ? "#\(sections.count + 1)" : name)",
                                offset: section.offset, size: section.size, imageSize: imageSize)
            }
            sections.append(section)
            scn = elf_nextscn(elf, current)
        }
        return sections
    }

    private static func lastError() -> String {
        elf_errmsg(-1).map { String(cString: $0) } ?? "unknown libelf error"
    }
}
