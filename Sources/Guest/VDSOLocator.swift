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
    /// Most program headers a candidate image may have.
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
              pageStartsWithELFMagic(base) else {
            throw VDSOLocatorError.notELF(base: base)
        }
        let image: ELFImage
        do {
            image = try ELFImage(bytes: readImage(base: base))
        } catch ELFError.notELF {
            throw VDSOLocatorError.notELF(base: base)
        } catch let error as ELFError {
            throw VDSOLocatorError.malformed(base: base, reason: "\(error)")
        }
        guard image.isX86_64, image.type == ELFImage.typeSharedObject else {
            throw VDSOLocatorError.notELF(base: base)
        }
        let segment = try executableSegment(base: base, image: image)
        // Prefer .text, but only if it lies inside the executable segment.
        if let text = textSection(base: base, image: image),
           text.lowerBound >= segment.lowerBound, text.upperBound <= segment.upperBound {
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
        return bytes == ELFImage.magic
    }

    /// The bounded image at `base` (`maximumImageSize` bytes), page by page.
    /// The kernel maps vDSO pages on first touch, so some (often the section
    /// table at the end) may be absent: those read as zeros, which parse as
    /// empty headers, so a missing section table just means no `.text` name.
    private func readImage(base: UInt64) -> [UInt8] {
        let page = Int(PageSize.size4KiB.bytes)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.maximumImageSize)
        for offset in stride(from: 0, to: Self.maximumImageSize, by: page) {
            bytes += (try? view.read(virtual: base + UInt64(offset), count: page)) ?? [UInt8](repeating: 0, count: page)
        }
        return bytes
    }

    private func executableSegment(base: UInt64, image: ELFImage) throws -> Range<UInt64> {
        guard image.programHeaders.count <= Self.maximumHeaders else {
            throw VDSOLocatorError.malformed(base: base, reason: "\(image.programHeaders.count) program headers")
        }
        let executable = image.loadSegments.first { $0.flags & ELFProgramHeader.flagExecute != 0 }
        guard let segment = executable else { throw VDSOLocatorError.noExecutableSegment(base: base) }
        guard segment.fileSize > 0 else {
            throw VDSOLocatorError.malformed(base: base, reason: "executable segment is empty")
        }
        // The vDSO image is mapped whole from file offset 0 at `base`; ELFImage
        // bounded offset + size by the image size.
        return (base + segment.offset) ..< (base + segment.offset + segment.fileSize)
    }

    /// The `.text` section's virtual range, or nil if the image has no
    /// section table or no such section.
    private func textSection(base: UInt64, image: ELFImage) -> Range<UInt64>? {
        guard let text = image.section(named: ".text"), text.type == ELFSection.typeProgBits else { return nil }
        return (base + text.offset) ..< (base + text.offset + text.size)
    }

    private static func littleEndianWords(_ bytes: [UInt8]) -> [UInt64] {
        stride(from: 0, to: bytes.count - 7, by: 8).map { UInt64(littleEndianBytes: bytes[$0 ..< $0 + 8]) }
    }
}
