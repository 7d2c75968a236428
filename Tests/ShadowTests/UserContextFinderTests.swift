import XCTest
import Guest
@testable import Shadow

/// `UserContextFinder` against a `ScriptedTarget` (no guest on the
/// unit-test machine): a kernel with an IDT, one process that faults from
/// user mode and one kernel thread that faults in kernel mode.
final class UserContextFinderTests: XCTestCase {
    static let idtBase: UInt64 = 0xFFFF_FE00_0000_0000
    static let frames: UInt64 = 0xFFFF_C900_0000_0000
    static let pageFaultEntry: UInt64 = 0xFFFF_FFFF_8100_1230
    static let userRIP: UInt64 = 0x40_1234
    /// Selectors: kernel code and data, user code and data (RPL 0 and 3).
    static let kernelCS: UInt64 = 0x10, kernelSS: UInt64 = 0x18, userCS: UInt64 = 0x33, userSS: UInt64 = 0x2B
    /// CR4.PAE and EFER.LMA|NXE: long-mode paging (Intel SDM Vol. 3A §2.5, §2.2.1).
    static let cr4: UInt64 = 1 << 5, efer: UInt64 = 1 << 10 | 1 << 11

    let target = ScriptedTarget()
    var root: UInt64 = 0

    override func setUpWithError() throws {
        root = target.newAddressSpace()
        try target.map(Self.idtBase, pages: 1, to: 0x50_0000, in: root)
        try target.map(Self.frames, pages: 1, to: 0x51_0000, in: root)
        // Gate 14: a present 64-bit interrupt gate (type 0xE) to the entry
        // (Intel SDM Vol. 3A §6.14.1, figure 6-8).
        let h = Self.pageFaultEntry
        let low = (h & 0xFFFF) | Self.kernelCS << 16 | UInt64(0x8E) << 40 | ((h >> 16) & 0xFFFF) << 48
        try target.writeInteger(physical: 0x50_0000 + 14 * 16, low)
        try target.writeInteger(physical: 0x50_0000 + 14 * 16 + 8, h >> 32)
        target.idtr = DescriptorTableRegister(base: Self.idtBase, limit: 0xFFF)
        // Hardware frames at the entry: error code, rip, cs, rflags, rsp, ss.
        try writeFrame(at: 0x51_0100, [4, Self.userRIP, Self.userCS, 0x202, 0x7FFF_F000, Self.userSS])
        try writeFrame(at: 0x51_0200, [0, 0xFFFF_FFFF_8100_0000, Self.kernelCS, 0x2, Self.frames + 0x800, Self.kernelSS])
        // vCPU 0: a kernel thread faulting in kernel mode, over and over.
        target.processes.append(.init(registers: registers(cs: Self.kernelCS, rip: Self.pageFaultEntry, rsp: Self.frames + 0x200)) { r in
            var r = r; r.rip = Self.pageFaultEntry; return r
        })
        // vCPU 1: a process alternating between its user code and page faults.
        target.processes.append(.init(registers: registers(cs: Self.userCS, rip: Self.userRIP, rsp: 0x7FFF_F000)) { r in
            var r = r
            if r.cs == UInt16(Self.userCS) {
                r.cs = UInt16(Self.kernelCS); r.rip = Self.pageFaultEntry; r.rsp = Self.frames + 0x100
            } else {
                r.cs = UInt16(Self.userCS); r.rip = Self.userRIP; r.rsp = 0x7FFF_F000
            }
            return r
        })
    }

    private func registers(cs: UInt64, rip: UInt64, rsp: UInt64) -> GuestRegisters {
        var r = GuestRegisters()
        r.cs = UInt16(cs); r.rip = rip; r.rsp = rsp
        r.cr3 = root; r.cr4 = Self.cr4; r.efer = Self.efer
        return r
    }

    private func writeFrame(at physical: UInt64, _ qwords: [UInt64]) throws {
        for (i, q) in qwords.enumerated() { try target.writeInteger(physical: physical + UInt64(i) * 8, q) }
    }

    func testPageFaultEntryComesFromTheIDT() throws {
        XCTAssertEqual(try UserContextFinder(target: target).pageFaultEntry(vcpu: VCPUID(0)), Self.pageFaultEntry)
    }

    func testFindsAProcessInUserModeThroughItsFault() throws {
        let finder = UserContextFinder(target: target)
        var loop = StopLoop(target: target)
        let stop = try finder.find(loop: &loop, pageFaultEntry: Self.pageFaultEntry, excluded: [],
                                   deadline: ContinuousClock().now + .seconds(5))
        XCTAssertEqual(stop.vcpu, VCPUID(1))
        XCTAssertEqual(stop.registers.rip, Self.userRIP)
        XCTAssertTrue(stop.registers.inUserMode)
        XCTAssertGreaterThan(target.declined, 0, "the kernel thread's faults were passed over")
        XCTAssertTrue(target.breakpoints.isEmpty, "every breakpoint it set is removed")
    }

    func testExcludedProcessesAreNotBorrowed() throws {
        let finder = UserContextFinder(target: target)
        var loop = StopLoop(target: target)
        XCTAssertThrowsError(try finder.find(loop: &loop, pageFaultEntry: Self.pageFaultEntry, excluded: [root],
                                             deadline: ContinuousClock().now + .milliseconds(200))) { error in
            guard case .noUserContext? = error as? ShadowError else { return XCTFail("\(error)") }
        }
        XCTAssertTrue(target.breakpoints.isEmpty)
    }
}
