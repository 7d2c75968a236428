import CShadow
import Glibc
import XCTest
@testable import Shadow

/// The class table is complete and consistent, and the filter and the
/// supervisor follow it: every x86-64 call lands in exactly one of
/// local-by-design (with its reason), guest, or refused.
final class SyscallClassTableTests: XCTestCase {
    /// Where a call lands, as the three-way split.
    enum Landing: Equatable { case localByDesign, guest, refused }

    private func landing(_ entry: SyscallEntry) -> Landing {
        switch entry.callClass {
        case .local: return .localByDesign
        // Routed calls go to the guest for guest paths and fds (the inspector's
        // own files are local by design); machine calls go to the guest or are
        // refused with EPERM.
        case .routed, .machine: return .guest
        case .refused: return .refused
        }
    }

    func testEveryNumberHasExactlyOneRow() {
        let rows = SyscallClassTable.entriesBelow200 + SyscallClassTable.entriesFrom200
        XCTAssertEqual(Set(rows.map(\.number)).count, rows.count, "a number appears twice")
        XCTAssertEqual(Set(rows.map(\.name)).count, rows.count, "a name appears twice")
        XCTAssertEqual(SyscallClassTable.highestNumber, 462)
        // syscall_64.tbl assigns 0...334 and 424...462; 335...423 are unused on x86-64.
        for n in Array(0...334) + Array(424...462) {
            XCTAssertNotNil(SyscallClassTable.byNumber[n], "syscall \(n) has no row")
        }
        for n in 335...423 { XCTAssertNil(SyscallClassTable.byNumber[n], "syscall \(n) is unassigned") }
    }

    func testEachRowLandsInExactlyOnePlace() {
        var counts: [Landing: Int] = [:]
        for n in 0...SyscallClassTable.highestNumber {
            guard let entry = SyscallClassTable.byNumber[n] else { continue }
            let spec = SyscallSpecTable.byNumber[n]
            switch entry.callClass {
            case .local(let reason):
                XCTAssertFalse(reason.rawValue.isEmpty)
                XCTAssertNil(spec, "\(entry.name) is local by design but has a spec")
            case .routed:
                XCTAssertNotNil(spec, "\(entry.name) is routed without a spec")
                if case .machine? = spec?.handling { XCTFail("\(entry.name): routed with a machine rule") }
            case .machine:
                guard case .machine? = spec?.handling else { XCTFail("\(entry.name): machine without a machine rule"); continue }
            case .refused(let errnoValue, let reason):
                XCTAssertTrue(errnoValue == EPERM || errnoValue == ENOSYS, "\(entry.name)")
                XCTAssertFalse(reason.isEmpty)
                XCTAssertNil(spec, "\(entry.name) is refused but has a spec")
            }
            if let spec { XCTAssertEqual(spec.name, entry.name, "spec of \(n)") }
            counts[landing(entry), default: 0] += 1
        }
        XCTAssertEqual(counts.values.reduce(0, +), SyscallClassTable.byNumber.count)
        // Every spec belongs to a row.
        for spec in SyscallSpecTable.all { XCTAssertNotNil(SyscallClassTable.byNumber[spec.number], spec.name) }
    }

    /// The names agree with this host's kernel header, where it has one.
    func testNamesMatchTheKernelHeader() throws {
        let header = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"
        guard let text = try? String(contentsOfFile: header, encoding: .utf8) else { throw XCTSkip("no \(header)") }
        var checked = 0
        for line in text.split(separator: "\n") where line.hasPrefix("#define __NR_") {
            let parts = line.dropFirst("#define __NR_".count).split(separator: " ")
            guard parts.count == 2, let n = Int(parts[1]) else { continue }
            XCTAssertEqual(SyscallClassTable.byNumber[n]?.name, String(parts[0]), "syscall \(n)")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 300)
    }

    /// The filter traps every call that is not local by design, whatever its
    /// arguments; a local call is never trapped.
    func testFilterTrapsEverythingNotLocal() throws {
        let range = GuestFdRange.standard
        let bpf = BPFInterpreter(program: try SeccompFilter.build(range: range))
        let localFds: [UInt64] = [3, 4, 5, 6, 7, 8]
        let guestFds = [UInt64](repeating: UInt64(range.lowerBound), count: 6)
        for n in 0...(SyscallClassTable.highestNumber + 40) {
            let callClass = SyscallClassTable.callClass(of: n)
            let onLocal = try bpf.run(number: n, arguments: localFds)
            let onGuest = try bpf.run(number: n, arguments: guestFds)
            switch callClass {
            case .local:
                XCTAssertEqual(onLocal, CSHADOW_RET_ALLOW, "syscall \(n)")
                XCTAssertEqual(onGuest, CSHADOW_RET_ALLOW, "syscall \(n)")
            case .routed:
                switch SyscallSpecTable.byNumber[n]?.trap {
                case .always?:
                    XCTAssertEqual(onLocal, CSHADOW_RET_USER_NOTIF, "syscall \(n)")
                case .fdInRange?:
                    // Local fds stay local; a guest fd is always seen.
                    XCTAssertEqual(onGuest, CSHADOW_RET_USER_NOTIF, "syscall \(n)")
                case .argumentEquals(let argument, let value)?:
                    var arguments = localFds
                    arguments[argument] = UInt64(value)
                    XCTAssertEqual(try bpf.run(number: n, arguments: arguments), CSHADOW_RET_USER_NOTIF, "syscall \(n)")
                case .fdInRangeOrArgumentWithin(_, let argument, let lower, let upper)?:
                    XCTAssertEqual(onGuest, CSHADOW_RET_USER_NOTIF, "syscall \(n)")
                    for value in [lower, upper] {
                        var arguments = localFds
                        arguments[argument] = UInt64(value)
                        XCTAssertEqual(try bpf.run(number: n, arguments: arguments), CSHADOW_RET_USER_NOTIF, "syscall \(n)")
                    }
                case nil:
                    XCTFail("routed syscall \(n) without a spec")
                }
            case .machine, .refused:
                XCTAssertEqual(onLocal, CSHADOW_RET_USER_NOTIF, "syscall \(n)")
                XCTAssertEqual(onGuest, CSHADOW_RET_USER_NOTIF, "syscall \(n)")
            }
        }
    }

    /// The supervisor's answer to refused and unknown calls: the errno, never a local run.
    func testRefusedAndUnknownCallsNeverRunLocally() {
        let executor = RecordingGuest()
        let redirector = SyscallRedirector(executor: executor, policy: ShadowPolicy(allowWrites: true), range: .standard)
        let installer = RecordingInstaller()
        func answer(_ n: Int) -> SyscallReply {
            redirector.handle(SyscallRequest(number: n, arguments: [0, 0, 0], pid: getpid()), installer: installer).reply
        }
        for n in 0...(SyscallClassTable.highestNumber + 40) {
            switch SyscallClassTable.callClass(of: n) {
            case .refused(let errnoValue, _):
                XCTAssertEqual(answer(n), .error(errnoValue), "syscall \(n)")
            default:
                continue
            }
        }
        XCTAssertEqual(answer(400), .error(ENOSYS))
        XCTAssertEqual(answer(0x3FFF_FFFF), .error(ENOSYS))
        XCTAssertEqual(answer(165 /* mount */), .error(EPERM), "even with --allow-writes: not redirected")
        XCTAssertEqual(answer(425 /* io_uring_setup */), .error(ENOSYS))
        XCTAssertEqual(executor.machineCalls.count, 0, "nothing refused reached the guest")
        XCTAssertEqual(executor.inner.calls, [], "nothing refused ran on this host")
    }
}
