import Guest

/// An uncompressed x86-64 kernel (`vmlinux`) ready to load.
///
/// Segments are placed at their physical addresses (`p_paddr`): vmlinux links
/// its code at 0xffffffff81000000 but runs from wherever `p_paddr` says until
/// it has set up its own page tables. Its `e_entry` is already the physical
/// address of `startup_64` (`readelf -h vmlinux` shows Entry point address
/// 0x1000000 for a default build); a virtual entry is translated through the
/// segment that contains it.
public struct ElfKernel: Sendable {
    /// One piece to copy into guest memory.
    public struct Segment: Sendable {
        /// Guest-physical destination.
        public let physicalAddress: UInt64
        /// Bytes from the file (`p_filesz`).
        public let contents: ImageContents
        /// Total size in memory (`p_memsz`); the tail past `contents` is zeroed (.bss).
        public let memorySize: UInt64
    }

    /// Segments to load, in file order.
    public let segments: [Segment]
    /// Guest-physical entry point (`startup_64`).
    public let entryPoint: UInt64
    /// Lowest physical address any segment occupies.
    public var lowestAddress: UInt64 { segments.map(\.physicalAddress).min() ?? 0 }
    /// First physical address past every segment (the kernel's `_end`).
    public var end: UInt64 { segments.map { $0.physicalAddress + $0.memorySize }.max() ?? 0 }

    /// Parses an ELF vmlinux from `bytes`.
    public init(bytes: [UInt8]) throws {
        let image: ELFImage
        do { image = try ELFImage(bytes: bytes) } catch let error as ELFError { throw BootError.elf(error) }
        guard image.elfClass == ELFImage.class64, image.machine == ELFImage.machineX86_64 else {
            throw BootError.notX86_64(elfClass: image.elfClass, machine: image.machine)
        }
        try self.init(entry: image.entry, loads: image.loadSegments.map(ElfFileHeader.ProgramHeader.init), fileSize: bytes.count) { load in
            .bytes(bytes[Int(load.offset) ..< Int(load.offset + load.fileSize)])  // ELFImage checked the bounds
        }
    }

    /// Parses the vmlinux in `file`, reading only its ELF and program
    /// headers; segments stay in the file until they are loaded.
    public init(file: ImageFile) throws {
        let header = try ElfFileHeader(file: file)
        try self.init(entry: header.entry, loads: header.loadSegments, fileSize: file.size) { load in
            .file(file, offset: Int(load.offset), count: Int(load.fileSize))  // ElfFileHeader checked the bounds
        }
    }

    /// Checks the PT_LOAD headers `loads` and keeps them as segments whose
    /// file bytes `contents` gives.
    private init(entry: UInt64, loads: [ElfFileHeader.ProgramHeader], fileSize: Int,
                 contents: (ElfFileHeader.ProgramHeader) -> ImageContents) throws {
        guard !loads.isEmpty else { throw BootError.noLoadableSegments }
        var segments: [Segment] = []
        for load in loads {
            guard load.fileSize <= load.memorySize else {
                throw BootError.elf(.outOfBounds(what: "PT_LOAD with filesz > memsz", offset: load.offset,
                                                 size: load.fileSize, imageSize: fileSize))
            }
            let (_, overflow) = load.physicalAddress.addingReportingOverflow(load.memorySize)
            guard !overflow else {
                throw BootError.elf(.outOfBounds(what: "PT_LOAD physical range", offset: load.physicalAddress,
                                                 size: load.memorySize, imageSize: fileSize))
            }
            segments.append(Segment(physicalAddress: load.physicalAddress, contents: contents(load),
                                    memorySize: load.memorySize))
        }
        self.segments = segments
        entryPoint = try Self.physicalEntry(entry, loads: loads)
    }

    /// `e_entry` as a physical address: as is when it falls in a segment's
    /// physical range, translated when it falls in a virtual range.
    static func physicalEntry(_ entry: UInt64, loads: [ElfFileHeader.ProgramHeader]) throws -> UInt64 {
        if loads.contains(where: { entry >= $0.physicalAddress && entry - $0.physicalAddress < $0.memorySize }) {
            return entry
        }
        if let load = loads.first(where: { entry >= $0.virtualAddress && entry - $0.virtualAddress < $0.memorySize }) {
            return entry - load.virtualAddress + load.physicalAddress
        }
        throw BootError.entryOutsideSegments(entry: entry)
    }
}
