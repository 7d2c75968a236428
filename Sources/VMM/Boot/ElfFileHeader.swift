import Guest

/// The ELF header and program headers of an x86-64 vmlinux, read from its
/// file without reading the rest (the segments are read into guest RAM when
/// loaded). Offsets are the ELF-64 layout (ELF gABI, "ELF Header" and
/// "Program Header"); only ELFCLASS64 little-endian x86-64 files get past
/// the class and machine check, so the other layouts are never parsed.
struct ElfFileHeader {
    static let classOffset = 4          // e_ident[EI_CLASS], 1 byte
    static let dataOffset = 5           // e_ident[EI_DATA], 1 byte
    static let machineOffset = 0x12     // e_machine, 2 (same offset in ELF-32)
    static let entryOffset = 0x18       // e_entry, 8
    static let phoffOffset = 0x20       // e_phoff, 8
    static let phentsizeOffset = 0x36   // e_phentsize, 2
    static let phnumOffset = 0x38       // e_phnum, 2
    /// sizeof(Elf64_Ehdr).
    static let headerSize = 64
    /// sizeof(Elf64_Phdr).
    static let programHeaderSize = 56
    /// ELFDATA2LSB: little-endian.
    static let dataLittleEndian: UInt8 = 1
    /// PN_XNUM: the real count is in section 0 (gABI); no kernel needs that many.
    static let extendedNumbering = 0xFFFF

    /// What the loader needs of one program header.
    struct ProgramHeader {
        let type: UInt32
        let offset: UInt64
        let virtualAddress: UInt64
        let physicalAddress: UInt64
        let fileSize: UInt64
        let memorySize: UInt64
    }

    /// PT_LOAD (ELF gABI).
    static let typeLoad: UInt32 = 1

    let entry: UInt64
    let programHeaders: [ProgramHeader]
    var loadSegments: [ProgramHeader] { programHeaders.filter { $0.type == Self.typeLoad } }

    init(file: ImageFile) throws {
        let header = try file.read(offset: 0, count: min(file.size, Self.headerSize), what: "ELF header")
        guard header.count == Self.headerSize else { throw BootError.elf(.notELF) }
        let reader = ByteReader(header)
        let elfClass = header[Self.classOffset]
        let machine: UInt16 = try reader.integer(at: Self.machineOffset, field: "e_machine")
        guard elfClass == ELFImage.class64, machine == ELFImage.machineX86_64,
              header[Self.dataOffset] == Self.dataLittleEndian else {
            throw BootError.notX86_64(elfClass: elfClass, machine: machine)
        }
        entry = try reader.integer(at: Self.entryOffset, field: "e_entry")
        let tableOffset: UInt64 = try reader.integer(at: Self.phoffOffset, field: "e_phoff")
        let entrySize = Int(try reader.integer(at: Self.phentsizeOffset, as: UInt16.self, field: "e_phentsize"))
        let count = Int(try reader.integer(at: Self.phnumOffset, as: UInt16.self, field: "e_phnum"))
        guard count == 0 || entrySize >= Self.programHeaderSize, count != Self.extendedNumbering else {
            throw BootError.elf(.outOfBounds(what: "program header table (e_phentsize \(entrySize), e_phnum \(count))",
                                             offset: tableOffset, size: 0, imageSize: file.size))
        }
        let tableSize = UInt64(entrySize * count)
        try Self.checkBounds("program header table", offset: tableOffset, size: tableSize, fileSize: file.size)
        let table = try file.read(offset: Int(tableOffset), count: Int(tableSize), what: "program header table")
        let phdrs = ByteReader(table)
        var headers: [ProgramHeader] = []
        for index in 0..<count {
            let base = index * entrySize
            let header = ProgramHeader(
                type: try phdrs.integer(at: base, field: "p_type"),
                offset: try phdrs.integer(at: base + 8, field: "p_offset"),
                virtualAddress: try phdrs.integer(at: base + 16, field: "p_vaddr"),
                physicalAddress: try phdrs.integer(at: base + 24, field: "p_paddr"),
                fileSize: try phdrs.integer(at: base + 32, field: "p_filesz"),
                memorySize: try phdrs.integer(at: base + 40, field: "p_memsz"))
            try Self.checkBounds("program header \(index)", offset: header.offset, size: header.fileSize, fileSize: file.size)
            headers.append(header)
        }
        programHeaders = headers
    }

    private static func checkBounds(_ what: String, offset: UInt64, size: UInt64, fileSize: Int) throws {
        let (end, overflow) = offset.addingReportingOverflow(size)
        guard !overflow, end <= UInt64(fileSize) else {
            throw BootError.elf(.outOfBounds(what: what, offset: offset, size: size, imageSize: fileSize))
        }
    }
}

extension ElfFileHeader.ProgramHeader {
    /// The same fields of a header libelf parsed.
    init(_ header: ELFProgramHeader) {
        self.init(type: header.type, offset: header.offset, virtualAddress: header.virtualAddress,
                  physicalAddress: header.physicalAddress, fileSize: header.fileSize, memorySize: header.memorySize)
    }
}
