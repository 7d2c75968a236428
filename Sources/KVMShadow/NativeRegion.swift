import Glibc
import Guest
import Shadow

/// Page 0 of S's region on swvmm's own machine: the stub and its header
/// (`ShadowStub`), the short sleep S takes while calls are coming, and the
/// code that makes S (`ForkCode`). The same bytes are what swvmm checks S
/// against at each of its traps, the idle countdown aside.
struct NativeRegion: Sendable {
    /// The page as written into the borrowed process's region.
    let firstPage: [UInt8]
    let forkCode: ForkCode

    init(stub: ShadowStub, cookie: [UInt8], cpu: Int, burstSleepNanoseconds: UInt64) {
        let forkCode = ForkCode()
        // Idle countdown 0: S never ends itself; it lives with the VM.
        var page = stub.firstPage(cookie: cookie, cpu: cpu, idleCountdown: 0)
        let timespec = NativeRegion.le64(burstSleepNanoseconds / 1_000_000_000) + NativeRegion.le64(burstSleepNanoseconds % 1_000_000_000)
        page.replaceSubrange(ForkCode.burstTimespecOffset ..< ForkCode.burstTimespecOffset + timespec.count, with: timespec)
        page.replaceSubrange(ForkCode.offset ..< ForkCode.offset + forkCode.bytes.count, with: forkCode.bytes)
        firstPage = page
        self.forkCode = forkCode
    }

    /// Whether the page at `address` in `view` (S's page 0) is `firstPage`
    /// apart from the idle countdown, which S's loop decrements. Read into
    /// a stack buffer and compared with memcmp: swvmm asks at every one of
    /// S's traps, and copying into an array and comparing slices was the
    /// largest part of a trap's own time in the emulated KVM host.
    func isIntact(at address: UInt64, in view: GuestView) -> Bool {
        withUnsafeTemporaryAllocation(byteCount: firstPage.count, alignment: 16) { page in
            guard (try? view.read(virtual: address, into: page)) != nil else { return false }
            let countdown = ShadowStub.idleCountdownOffset ..< ShadowStub.idleCountdownOffset + 8
            return firstPage.withUnsafeBytes { expected in
                guard let have = page.baseAddress, let want = expected.baseAddress else { return false }
                return memcmp(have, want, countdown.lowerBound) == 0
                    && memcmp(have + countdown.upperBound, want + countdown.upperBound, firstPage.count - countdown.upperBound) == 0
            }
        }
    }

    private static func le64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
}
