/// A `syscall` instruction found in guest memory.
public struct SyscallSite: Equatable, Sendable {
    /// Virtual address of the instruction's first byte.
    public let virtual: UInt64
    /// Guest-physical address of that byte when it was found (pages move:
    /// re-translate before relying on it).
    public let physical: UInt64
}

/// Why a syscall-site search could not run.
public enum SyscallSiteFinderError: Error, Equatable, CustomStringConvertible {
    /// The range is longer than the caller's `maxBytes` bound or wraps around.
    case rangeTooLarge(start: UInt64, length: Int, maxBytes: Int)

    public var description: String {
        switch self {
        case let .rangeTooLarge(start, length, maxBytes):
            return "syscall-site search of \(length) bytes at \(start.guestHex) exceeds its bound of \(maxBytes) bytes"
        }
    }
}

/// Finds `syscall` instructions (0F 05) that start at an instruction boundary.
///
/// Grepping for the two bytes is wrong: `mov eax, 0x50f` is `b8 0f 05 00 00`.
/// So code is decoded by linear sweep from a start the caller knows to be an
/// instruction boundary (a function, an ELF text section, the vDSO's text,
/// which holds no data), and only instructions capstone decodes as
/// `syscall` count. An undecodable byte is skipped and decoding resumes at
/// the next one, so a stray byte cannot end the sweep.
public struct SyscallSiteFinder {
    /// Default bound on the bytes one guest search may read.
    public static let defaultMaxBytes = 1 << 20

    public let disassembler: Disassembler

    public init(disassembler: Disassembler) {
        self.disassembler = disassembler
    }

    /// Addresses of the `syscall` instructions in `code`, whose first byte is
    /// at `startAddress` and is an instruction boundary. At most `maxSites`.
    public func sites(in code: [UInt8], startAddress: UInt64, maxSites: Int = .max) -> [UInt64] {
        var found: [UInt64] = []
        guard maxSites > 0 else { return found }
        disassembler.sweep(code, address: startAddress) { id, address, _ in
            if id == Disassembler.syscallID { found.append(address) }
            return found.count < maxSites
        }
        return found
    }

    /// `syscall` sites in guest-virtual `[start, start+length)` that lie in
    /// pages that are present, user and executable (at every paging level).
    ///
    /// Each maximal run of such pages is read and swept from its first byte,
    /// so `start` must be an instruction boundary (e.g. the vDSO's text
    /// section start) and a run that begins after a gap starts at its page
    /// boundary. Unmapped, supervisor or non-executable pages are skipped,
    /// not errors. `length` is bounded by `maxBytes`.
    public func sites(in view: GuestView, start: UInt64, length: Int,
                      maxBytes: Int = SyscallSiteFinder.defaultMaxBytes,
                      maxSites: Int = 64) throws -> [SyscallSite] {
        guard length >= 0, length <= maxBytes, length <= GuestView.maximumTransfer,
              !start.addingReportingOverflow(UInt64(length)).overflow else {
            throw SyscallSiteFinderError.rangeTooLarge(start: start, length: length, maxBytes: maxBytes)
        }
        var result: [SyscallSite] = []
        for run in executableUserRuns(in: view, start: start, length: length) {
            guard result.count < maxSites else { break }
            let code = try view.read(virtual: run.lowerBound, count: Int(run.upperBound - run.lowerBound))
            for address in sites(in: code, startAddress: run.lowerBound, maxSites: maxSites - result.count) {
                let translation = try view.translate(address)
                result.append(SyscallSite(virtual: address, physical: translation.physical))
            }
        }
        return result
    }

    /// Maximal sub-ranges of `[start, start+length)` whose pages are present,
    /// user and executable. One walk per page (or large page) visited.
    private func executableUserRuns(in view: GuestView, start: UInt64, length: Int) -> [Range<UInt64>] {
        var runs: [Range<UInt64>] = []
        let end = start + UInt64(length)
        var runStart: UInt64?
        var address = start
        while address < end {
            let step: UInt64
            let usable: Bool
            if let translation = try? view.translate(address) {
                let permissions = translation.permissions
                usable = permissions.user && permissions.executable
                step = translation.bytesToPageEnd
            } else {
                // Not mapped (or not canonical): skip to the next 4 KiB page.
                usable = false
                step = PageSize.size4KiB.bytes - (address & (PageSize.size4KiB.bytes - 1))
            }
            let next = min(end, address.addingReportingOverflow(step).overflow ? end : address + step)
            if usable {
                if runStart == nil { runStart = address }
            } else if let begin = runStart {
                runs.append(begin ..< address)
                runStart = nil
            }
            address = next
        }
        if let begin = runStart { runs.append(begin ..< end) }
        return runs
    }
}
