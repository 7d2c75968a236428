/// ELF64 facts the vDSO check needs (System V gABI and the x86-64 psABI;
/// the same values as <elf.h>). Only what is checked is named.
enum ELF64Layout {
    static let magic: [UInt8] = [0x7F, 0x45, 0x4C, 0x46] // "\x7fELF"
    static let classOffset = 4, class64: UInt8 = 2         // e_ident[EI_CLASS] = ELFCLASS64
    static let dataOffset = 5, dataLSB: UInt8 = 1          // e_ident[EI_DATA] = ELFDATA2LSB
    static let typeOffset = 16, typeDynamic: UInt16 = 3    // e_type = ET_DYN
    static let machineOffset = 18, machineX86_64: UInt16 = 62 // e_machine = EM_X86_64
    static let phoffOffset = 32, shoffOffset = 40
    static let phentsizeOffset = 54, phnumOffset = 56
    static let shentsizeOffset = 58, shnumOffset = 60, shstrndxOffset = 62
    static let headerSize = 64
    static let programHeaderSize = 56, sectionHeaderSize = 64
    static let ptLoad: UInt32 = 1, pfExecute: UInt32 = 1   // p_type PT_LOAD, p_flags PF_X
    static let shtProgbits: UInt32 = 1                     // sh_type SHT_PROGBITS
}

/// Auxiliary-vector type of the vDSO's ELF header address (Linux
/// include/uapi/linux/auxvec.h, x86: AT_SYSINFO_EHDR = 33).
public let auxvSysinfoEHDR: UInt64 = 33

/// A vDSO found in a process's address space.
public struct VDSOLocation: Equatable, Sendable {
    /// Virtual address of its ELF header (what AT_SYSINFO_EHDR holds).
    public let base: UInt64
    /// Virtual range of its code: the `.text` section when the section table
    /// names one, otherwise the executable PT_LOAD segment. Linear sweep from
    /// its start is sound: vDSO text holds no data.
    public let text: Range<UInt64>
}

/// Why a candidate is not a usable vDSO image.
public enum VDSOLocatorError: Error, Equatable, CustomStringConvertible {
    /// The page does not start with an x86-64 little-endian ET_DYN ELF header.
    case notELF(base: UInt64)
    /// Header fields point outside the bounded image or are inconsistent.
    case malformed(base: UInt64, reason: String)
    /// No executable PT_LOAD segment.
    case noExecutableSegment(base: UInt64)
    /// A bound given by the caller is unusable.
    case badBound(String)

    public var description: String {
        switch self {
        case let .notELF(base): return "no x86-64 ET_DYN ELF header at \(base.guestHex)"
        case let .malformed(base, reason): return "ELF image at \(base.guestHex) is malformed: \(reason)"
        case let .noExecutableSegment(base): return "ELF image at \(base.guestHex) has no executable PT_LOAD segment"
        case let .badBound(reason): return "bad search bound: \(reason)"
        }
    }
}

/// Finds the vDSO of a user process without symbols.
///
/// The canonical source is the auxiliary vector's AT_SYSINFO_EHDR entry. At
/// process start the user stack holds argc, argv[], NULL, envp[], NULL and the
/// auxv pairs; later in a process's life they are far above rsp, so
/// `findAuxvValue` is a bounded heuristic scan. `locate(in:)` is the fallback:
/// it probes page-aligned addresses of a hint range for a vDSO-shaped ELF.
public struct VDSOLocator {
    /// Largest vDSO image considered (x86-64 vDSOs are a few pages).
    public static let maximumImageSize = 128 << 10
    /// Most program/section headers read from a candidate image.
    static let maximumHeaders = 64

    public let view: GuestView

    public init(view: GuestView) {
        self.view = view
    }

    /// Scans upward from `stackPointer` (8-byte aligned, at most `maxPages`
    /// pages, stopping at the first unmapped page) for a qword pair
    /// `(type, value)` that `accept` approves; returns the first such value.
    ///
    /// Heuristic: the pair is matched anywhere on the scanned stack, not only
    /// inside the real auxv, so `accept` must validate the value. For
    /// AT_SYSINFO_EHDR the default accepts a page-aligned address whose page
    /// begins with "\x7fELF", which stray stack data rarely satisfies.
    public func findAuxvValue(type: UInt64, stackPointer: UInt64, maxPages: Int = 16,
                              accept: ((UInt64) -> Bool)? = nil) throws -> UInt64? {
        guard maxPages > 0, maxPages <= 1024 else { throw VDSOLocatorError.badBound("maxPages \(maxPages) not in 1...1024") }
        let isAcceptable = accept ?? { [self] value in
            type == auxvSysinfoEHDR ? self.pageStartsWithELFMagic(value) : true
        }
        let pageMask = PageSize.size4KiB.bytes - 1
        // Rounding up cannot wrap for a real stack; a hostile rsp near the top just finds nothing.
        guard stackPointer <= UInt64.max - PageSize.size4KiB.bytes else { return nil }
        let start = (stackPointer + 7) & ~UInt64(7)
        let limit = (stackPointer & ~pageMask).addingReportingOverflow(UInt64(maxPages) * PageSize.size4KiB.bytes)
        let end = limit.overflow ? UInt64.max & ~pageMask : limit.partialValue
        var words: [UInt64] = []
        var address = start
        // Read page by page until the bound or the first unreadable page
        // (the top of the stack mapping).
        while address < end {
            let chunkEnd = min(end, (address & ~pageMask) + PageSize.size4KiB.bytes)
            guard let bytes = try? view.read(virtual: address, count: Int(chunkEnd - address)) else { break }
            words.append(contentsOf: Self.littleEndianWords(bytes))
            address = chunkEnd
        }
        guard words.count >= 2 else { return nil }
        for index in 0 ..< words.count - 1 where words[index] == type {
            let value = words[index + 1]
            if isAcceptable(value) { return value }
        }
        return nil
    }

    /// Checks that `base` holds a vDSO-shaped image (x86-64 ET_DYN ELF with an
    /// executable PT_LOAD) and returns its text range.
    public func inspect(base: UInt64) throws -> VDSOLocation {
        // The image must fit below the top of the address space, so that
        // base + offset arithmetic on bounded offsets never wraps.
        guard base & (PageSize.size4KiB.bytes - 1) == 0,
              base <= UInt64.max - UInt64(Self.maximumImageSize),
              let header = try? view.read(virtual: base, count: ELF64Layout.headerSize),
              Array(header[0 ..< 4]) == ELF64Layout.magic,
              header[ELF64Layout.classOffset] == ELF64Layout.class64,
              header[ELF64Layout.dataOffset] == ELF64Layout.dataLSB,
              Self.u16(header, ELF64Layout.typeOffset) == ELF64Layout.typeDynamic,
              Self.u16(header, ELF64Layout.machineOffset) == ELF64Layout.machineX86_64 else {
            throw VDSOLocatorError.notELF(base: base)
        }
        let segment = try executableSegment(base: base, header: header)
        let text = (try? textSection(base: base, header: header)) ?? nil
        // Prefer .text, but only if it lies inside the executable segment.
        if let text, text.lowerBound >= segment.lowerBound, text.upperBound <= segment.upperBound {
            return VDSOLocation(base: base, text: text)
        }
        return VDSOLocation(base: base, text: segment)
    }

    /// Probes each page-aligned address of `hint` (at most `maxPages`) and
    /// returns the first that `inspect` accepts.
    public func locate(in hint: Range<UInt64>, maxPages: Int = 4096) throws -> VDSOLocation? {
        let page = PageSize.size4KiB.bytes
        guard maxPages > 0, (hint.upperBound - hint.lowerBound) / page <= UInt64(maxPages) else {
            throw VDSOLocatorError.badBound("hint \(hint.lowerBound.guestHex)..<\(hint.upperBound.guestHex) exceeds \(maxPages) pages")
        }
        let rounded = hint.lowerBound.addingReportingOverflow(page - 1)
        guard !rounded.overflow else { return nil }
        var address = rounded.partialValue & ~(page - 1)
        while address < hint.upperBound {
            if let location = try? inspect(base: address) { return location }
            let next = address.addingReportingOverflow(page)
            if next.overflow { break }
            address = next.partialValue
        }
        return nil
    }

    /// Convenience: the auxv value first, then the hint range.
    public func locate(stackPointer: UInt64?, hint: Range<UInt64>?) throws -> VDSOLocation? {
        if let sp = stackPointer,
           let base = try findAuxvValue(type: auxvSysinfoEHDR, stackPointer: sp),
           let location = try? inspect(base: base) {
            return location
        }
        if let hint { return try locate(in: hint) }
        return nil
    }

    // MARK: - Bounded ELF reading

    private func pageStartsWithELFMagic(_ value: UInt64) -> Bool {
        guard value != 0, value & (PageSize.size4KiB.bytes - 1) == 0,
              let bytes = try? view.read(virtual: value, count: 4) else { return false }
        return bytes == ELF64Layout.magic
    }

    /// Reads `count` bytes at image offset `offset`, refusing anything outside
    /// the bounded image (header values are hostile).
    private func readImage(base: UInt64, offset: UInt64, count: Int, what: String) throws -> [UInt8] {
        let cap = UInt64(Self.maximumImageSize)
        guard count >= 0, offset <= cap, UInt64(count) <= cap - offset else {
            throw VDSOLocatorError.malformed(base: base, reason: "\(what) at offset \(offset.guestHex) (+\(count)) is outside the image")
        }
        return try view.read(virtual: base + offset, count: count)
    }

    private func executableSegment(base: UInt64, header: [UInt8]) throws -> Range<UInt64> {
        let offset = Self.u64(header, ELF64Layout.phoffOffset)
        let size = Int(Self.u16(header, ELF64Layout.phentsizeOffset))
        let count = Int(Self.u16(header, ELF64Layout.phnumOffset))
        guard size == ELF64Layout.programHeaderSize, count > 0, count <= Self.maximumHeaders else {
            throw VDSOLocatorError.malformed(base: base, reason: "program header table (\(count) × \(size) bytes)")
        }
        let table = try readImage(base: base, offset: offset, count: size * count, what: "program headers")
        for index in 0 ..< count {
            let entry = Array(table[index * size ..< (index + 1) * size])
            guard Self.u32(entry, 0) == ELF64Layout.ptLoad, Self.u32(entry, 4) & ELF64Layout.pfExecute != 0 else { continue }
            let fileOffset = Self.u64(entry, 8), fileSize = Self.u64(entry, 32)
            let cap = UInt64(Self.maximumImageSize)
            guard fileOffset <= cap, fileSize <= cap - fileOffset, fileSize > 0 else {
                throw VDSOLocatorError.malformed(base: base, reason: "executable segment outside the image")
            }
            // The vDSO image is mapped whole from file offset 0 at `base`.
            return (base + fileOffset) ..< (base + fileOffset + fileSize)
        }
        throw VDSOLocatorError.noExecutableSegment(base: base)
    }

    /// The `.text` section's virtual range, or nil if the image has no
    /// section table or no section of that name.
    private func textSection(base: UInt64, header: [UInt8]) throws -> Range<UInt64>? {
        let offset = Self.u64(header, ELF64Layout.shoffOffset)
        let size = Int(Self.u16(header, ELF64Layout.shentsizeOffset))
        let count = Int(Self.u16(header, ELF64Layout.shnumOffset))
        let namesIndex = Int(Self.u16(header, ELF64Layout.shstrndxOffset))
        guard offset != 0, size == ELF64Layout.sectionHeaderSize, count > 0, count <= Self.maximumHeaders,
              namesIndex < count else { return nil }
        let table = try readImage(base: base, offset: offset, count: size * count, what: "section headers")
        let sections = (0 ..< count).map { Array(table[$0 * size ..< ($0 + 1) * size]) }
        let names = sections[namesIndex]
        let namesOffset = Self.u64(names, 24)
        let namesSize = Int(min(Self.u64(names, 32), 4096))
        let strings = try readImage(base: base, offset: namesOffset, count: namesSize, what: "section names")
        for section in sections where Self.u32(section, 4) == ELF64Layout.shtProgbits {
            let nameOffset = Int(Self.u32(section, 0))
            guard nameOffset < strings.count else { continue }
            let name = strings[nameOffset...].prefix { $0 != 0 }
            guard Array(name) == Array(".text".utf8) else { continue }
            let start = Self.u64(section, 24), length = Self.u64(section, 32)
            let cap = UInt64(Self.maximumImageSize)
            guard start <= cap, length <= cap - start else { return nil }
            return (base + start) ..< (base + start + length)
        }
        return nil
    }

    private static func u16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
    private static func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
        (0 ..< 4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) }
    }
    private static func u64(_ b: [UInt8], _ at: Int) -> UInt64 {
        (0 ..< 8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
    }

    private static func littleEndianWords(_ bytes: [UInt8]) -> [UInt64] {
        stride(from: 0, to: bytes.count - 7, by: 8).map { u64(bytes, $0) }
    }
}
