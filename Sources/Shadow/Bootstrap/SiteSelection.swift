import Guest

/// Chooses the `syscall` instruction to borrow in a stopped user process:
/// one in the vDSO's text (found through the auxv above the user stack),
/// else one after the user rip (an instruction boundary, so the sweep from
/// there follows real instructions).
enum SiteSelection {
    /// Stack pages scanned upward for the auxv (the initial stack of a
    /// process is small; deep call chains rarely exceed this).
    static let auxvPages = 256
    /// Bytes swept after the user rip when the vDSO gives no site.
    static let fallbackSweep = 256 << 10

    static func syscallSite(view: GuestView, stop: GuestRegisters) throws -> UInt64 {
        let disassembler: Disassembler
        do { disassembler = try Disassembler() } catch {
            throw ShadowError.noSyscallSite(pid: nil, detail: "capstone: \(error)")
        }
        let finder = SyscallSiteFinder(disassembler: disassembler)
        let locator = VDSOLocator(view: view)
        if let base = try? locator.findAuxvValue(type: auxvSysinfoEHDR, stackPointer: stop.rsp, maxPages: auxvPages),
           let vdso = try? locator.inspect(base: base) {
            let length = Int(clamping: vdso.text.upperBound - vdso.text.lowerBound)
            if let site = try? finder.sites(in: view, start: vdso.text.lowerBound, length: min(length, VDSOLocator.maximumImageSize), maxSites: 1).first,
               try isUserExecutable(view, site.virtual &+ X86.syscallLength) {
                return site.virtual
            }
        }
        let sites = (try? finder.sites(in: view, start: stop.rip, length: fallbackSweep, maxSites: 4)) ?? []
        for site in sites where (try? isUserExecutable(view, site.virtual &+ X86.syscallLength)) == true {
            return site.virtual
        }
        throw ShadowError.noSyscallSite(pid: nil, detail: "none in the vDSO's present text nor in \(fallbackSweep) bytes after rip \(stop.rip.guestHex)")
    }

    /// The return address must be in a present, user, executable page too
    /// (the syscall's return lands there).
    private static func isUserExecutable(_ view: GuestView, _ address: UInt64) throws -> Bool {
        let p = try view.translate(address).permissions
        return p.present && p.user && p.executable
    }
}
