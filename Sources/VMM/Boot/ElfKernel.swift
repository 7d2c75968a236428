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

    /// Parses the vmlinux in `file` through libelf, which maps the file
    /// lazily and so reads only its headers; segments stay in the file until
    /// they are loaded.
    public init(file: ImageFile) throws {
        let image: ELFImage
        do { image = try file.elfImage() } catch let error as ELFError { throw BootError.elf(error) }
        guard image.isX86_64 else { throw BootError.notX86_64(elfClass: image.elfClass, machine: image.machine) }
        let loads = image.loadSegments
        guard !loads.isEmpty else { throw BootError.noLoadableSegments }
        var segments: [Segment] = []
        for (index, load) in loads.enumerated() {
            guard load.fileSize <= load.memorySize else {
                throw BootError.badLoadSegment(index: index, detail: "p_filesz \(load.fileSize) is larger than p_memsz \(load.memorySize)")
            }
            let (_, overflow) = load.physicalAddress.addingReportingOverflow(load.memorySize)
            guard !overflow else {
                throw BootError.badLoadSegment(index: index, detail: "p_paddr 0x\(hex(load.physicalAddress)) + p_memsz 0x\(hex(load.memorySize)) overflows 64 bits")
            }
            // ELFImage checked offset + filesz against the file's size.
            segments.append(Segment(physicalAddress: load.physicalAddress,
                                    contents: ImageContents(file: file, offset: Int(load.offset), count: Int(load.fileSize)),
                                    memorySize: load.memorySize))
        }
        self.segments = segments
        entryPoint = try Self.physicalEntry(image.entry, loads: loads)
    }

    /// `e_entry` as a physical address: as is when it falls in a segment's
    /// physical range, translated when it falls in a virtual range.
    static func physicalEntry(_ entry: UInt64, loads: [ELFProgramHeader]) throws -> UInt64 {
        if loads.contains(where: { entry >= $0.physicalAddress && entry - $0.physicalAddress < $0.memorySize }) {
            return entry
        }
        if let load = loads.first(where: { entry >= $0.virtualAddress && entry - $0.virtualAddress < $0.memorySize }) {
            return entry - load.virtualAddress + load.physicalAddress
        }
        throw BootError.entryOutsideSegments(entry: entry)
    }
}
