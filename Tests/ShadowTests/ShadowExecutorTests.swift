import XCTest
import Guest
@testable import Shadow

/// `ShadowExecutor` against a `ScriptedTarget`: the unit-test machine has no
/// guest, so S and another process are scripted (QEMULiveTests and the
/// end-to-end tests run the same code against a real one).
final class ShadowExecutorTests: XCTestCase {
    static let regionBase: UInt64 = 0x7F00_0000_0000
    static let regionPhysical: UInt64 = 0x40_0000
    /// A user code selector: RPL 3 (Linux's __USER_CS).
    static let userCS: UInt16 = 0x33

    var target = ScriptedTarget()
    var shadow: ShadowProcess!
    /// The calls S made, and what it answers.
    var callsInS: [(number: UInt64, arguments: [UInt64])] = []
    var answer: UInt64 = 4242
    /// False: S never comes back to its trap point (killed, or the guest hangs).
    var sAlive = true

    override func setUpWithError() throws {
        let stub = try ShadowStub(regionLength: 64 << 10, sleepNanoseconds: 20_000_000)
        let paging = try target.mapUserRegion(virtualBase: Self.regionBase, pages: 16, physicalBase: Self.regionPhysical)
        let cookie = Array(UInt8(1) ... 16)
        try target.writeBytes(physical: Self.regionPhysical, stub.firstPage(cookie: cookie, cpu: nil))
        shadow = ShadowProcess(pid: 321, paging: paging, regionBase: Self.regionBase, regionLength: 64 << 10,
                               cookie: cookie, sleepNanoseconds: 20_000_000, borrowedPID: 12)
        // vCPU 0: another process whose code sits at the same virtual
        // address as S's trap point (breakpoints are by address).
        var other = GuestRegisters()
        other.cs = Self.userCS
        other.cr3 = 0x9_9000
        let trap = shadow.trapAddress
        target.processes.append(.init(registers: other) { r in var r = r; r.rip = trap; return r })
        // vCPU 1: S, asleep in its stub.
        var s = GuestRegisters()
        s.cs = Self.userCS
        s.cr3 = paging.root
        s.rip = Self.regionBase + 27
        let sys = shadow.syscallAddress
        target.processes.append(.init(registers: s) { [unowned self] r in
            var r = r
            guard sAlive else { return r }
            if r.rip == sys {
                callsInS.append((r.rax, [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]))
                r.rax = answer
            }
            r.rip = trap
            return r
        })
    }

    private func executor(timeout: Duration = .seconds(2)) throws -> ShadowExecutor {
        try ShadowExecutor(target: target, shadow: shadow, guestRunning: false, timeout: timeout)
    }

    func testCallRunsInSAndTheOtherProcessIsMovedPast() throws {
        let e = try executor()
        XCTAssertEqual(try e.syscall(LinuxABI.Syscall.getpid, [7, 8]), 4242)
        XCTAssertEqual(callsInS.map(\.number), [UInt64(LinuxABI.Syscall.getpid)])
        XCTAssertEqual(callsInS.first?.arguments, [7, 8, 0, 0, 0, 0])
        XCTAssertEqual(target.declined, 2, "the other process's hit, once to park S and once for the call")
        XCTAssertEqual(try target.registers(of: VCPUID(1)).rip, shadow.trapAddress, "S is parked at its trap point")
        XCTAssertEqual(e.statistics.calls, 1)
        XCTAssertEqual(e.statistics.parkings, 1)
        XCTAssertEqual(e.statistics.stops, target.stops)
    }

    func testABurstParksOnceAndReleaseLetsTheGuestRun() throws {
        let e = try executor()
        answer = UInt64(bitPattern: -2)
        XCTAssertEqual(try e.syscall(LinuxABI.Syscall.openat, []), -2, "a negative result comes back signed")
        XCTAssertEqual(try e.syscall(LinuxABI.Syscall.close, [3]), -2)
        XCTAssertEqual(e.statistics.parkings, 1)
        try e.release()
        XCTAssertTrue(target.running)
        XCTAssertFalse(target.breakpoints.contains(shadow.trapAddress))
        _ = try e.syscall(LinuxABI.Syscall.getpid, [])
        XCTAssertFalse(target.running, "the guest is stopped for the next burst")
        XCTAssertEqual(e.statistics.parkings, 2)
    }

    func testIdleLetsTheGuestRunAndTheNextCallParksAgain() throws {
        let e = try executor()
        _ = try e.syscall(LinuxABI.Syscall.getpid, [])
        XCTAssertFalse(target.running)
        try e.idle()
        XCTAssertTrue(target.running)
        XCTAssertFalse(target.breakpoints.contains(shadow.trapAddress))
        _ = try e.syscall(LinuxABI.Syscall.getpid, [])
        XCTAssertEqual(e.statistics.parkings, 2)
    }

    func testIdleCountdownStopsWhileHeldStartsAtCloseAndEndShadowSetsItToOne() throws {
        let countdown = Self.regionPhysical + UInt64(ShadowStub.idleCountdownOffset)
        let held = try ShadowExecutor(target: target, shadow: shadow, guestRunning: false, timeout: .seconds(2), idleTimeout: .seconds(600))
        try target.writeBytes(physical: countdown, le64(5))
        _ = try held.syscall(LinuxABI.Syscall.getpid, [])
        XCTAssertEqual(try target.readBytes(physical: countdown, count: 8), le64(0), "no countdown while held")
        try held.close()
        XCTAssertEqual(try target.readBytes(physical: countdown, count: 8), le64(30_000), "the countdown starts at close")
        let e = try ShadowExecutor(target: target, shadow: shadow, guestRunning: true, timeout: .seconds(2), idleTimeout: .seconds(600))
        try e.endShadow()
        XCTAssertEqual(try target.readBytes(physical: countdown, count: 8), le64(1), "S leaves its loop at the next turn")
        XCTAssertTrue(target.running)
        XCTAssertFalse(target.breakpoints.contains(shadow.trapAddress))
    }

    func testRegionRoundTripThroughSsPageTables() throws {
        let e = try executor()
        try e.writeRegion(offset: 10, [1, 2, 3])
        XCTAssertEqual(try e.readRegion(offset: 9, count: 5), [0, 1, 2, 3, 0])
        let physical = Self.regionPhysical + UInt64(ShadowStub.dataOffset) + 10
        XCTAssertEqual(try target.readBytes(physical: physical, count: 3), [1, 2, 3])
        XCTAssertThrowsError(try e.readRegion(offset: e.regionSize - 1, count: 2))
    }

    func testModifiedStubIsRefused() throws {
        let e = try executor()
        try target.writeBytes(physical: Self.regionPhysical + 1, [0xCC])
        XCTAssertThrowsError(try e.syscall(LinuxABI.Syscall.getpid, [])) { error in
            XCTAssertEqual(error as? ShadowError, .stubModified(pid: 321, address: Self.regionBase))
        }
        XCTAssertTrue(target.running, "the guest is let go")
    }

    func testSilentSIsReported() throws {
        sAlive = false
        let e = try executor(timeout: .milliseconds(50))
        XCTAssertThrowsError(try e.syscall(LinuxABI.Syscall.getpid, [])) { error in
            guard case .shadowNotResponding(321, _)? = error as? ShadowError else { return XCTFail("\(error)") }
        }
        XCTAssertTrue(callsInS.isEmpty)
    }
}

/// A freshly planted S still touching its region: it read the first byte of
/// the first data page before the guest stopped (a copy-on-write fault in
/// between) and writes that old byte back when it runs on. A path the host
/// wrote there meanwhile must survive to S's first call.
final class FreshShadowTests: XCTestCase {
    func testFirstPathOfANewShadowSurvivesItsTouchLoop() throws {
        let target = ScriptedTarget()
        let base = ShadowExecutorTests.regionBase, physical = ShadowExecutorTests.regionPhysical
        let stub = try ShadowStub(regionLength: 64 << 10, sleepNanoseconds: 20_000_000)
        let paging = try target.mapUserRegion(virtualBase: base, pages: 16, physicalBase: physical)
        let cookie = Array(UInt8(1) ... 16)
        try target.writeBytes(physical: physical, stub.firstPage(cookie: cookie, cpu: nil))
        let shadow = ShadowProcess(pid: 321, paging: paging, regionBase: base, regionLength: 64 << 10,
                                   cookie: cookie, sleepNanoseconds: 20_000_000, borrowedPID: 12)
        let dataPhysical = physical + UInt64(ShadowStub.dataOffset)
        // The write-back instruction of the touch loop (mov [rdi], al).
        let writeBack = base + 14
        var s = GuestRegisters()
        s.cs = ShadowExecutorTests.userCS
        s.cr3 = paging.root
        s.rip = writeBack
        s.rax = 0    // al: the byte read before the host wrote
        var pathsSeen: [[UInt8]] = []
        let sys = shadow.syscallAddress, trap = shadow.trapAddress
        target.processes.append(.init(registers: s) { r in
            var r = r
            if r.rip == writeBack {
                try? target.writeBytes(physical: dataPhysical, [UInt8(truncatingIfNeeded: r.rax)])
            } else if r.rip == sys {
                pathsSeen.append((try? target.readBytes(physical: dataPhysical, count: 14)) ?? [])
                r.rax = UInt64(bitPattern: 3)
            }
            r.rip = trap
            return r
        })
        let executor = try ShadowExecutor(target: target, shadow: shadow, guestRunning: true, timeout: .seconds(2))
        let path = Array("/proc/loadavg".utf8) + [0]
        try executor.writeRegion(offset: 0, path)
        XCTAssertEqual(try executor.syscall(LinuxABI.Syscall.openat, [UInt64(bitPattern: -100), executor.regionAddress, 0, 0]), 3)
        XCTAssertEqual(pathsSeen, [path])
    }
}
