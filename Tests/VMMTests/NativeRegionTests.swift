@testable import KVMShadow
import Guest
import Shadow
@testable import VMM
import XCTest

/// The check swvmm makes at each of S's traps: page 0 of S's region read
/// back through S's page tables (here an identity map in real guest RAM)
/// must be as written, the idle countdown aside.
final class NativeRegionTests: XCTestCase {
    private static let regionAddress: UInt64 = 0x20_0000

    private func setUp() throws -> (NativeRegion, GuestMemory, GuestView) {
        let stub = try ShadowStub(regionLength: ShadowStub.minimumRegion, sleepNanoseconds: 20_000_000)
        let region = NativeRegion(stub: stub, cookie: [UInt8](repeating: 0xA5, count: 16), cpu: 1, burstSleepNanoseconds: 1_000_000)
        let memory = try GuestMemory(size: 4 << 20)
        let root = try PageTables.write(into: memory)
        try memory.writeBytes(physical: Self.regionAddress, region.firstPage)
        return (region, memory, GuestView(memory: memory, context: PagingContext(root: root, fiveLevel: false)))
    }

    func testAPageAsWrittenIsIntactWhateverItsIdleCountdown() throws {
        let (region, memory, view) = try setUp()
        XCTAssertTrue(region.isIntact(at: Self.regionAddress, in: view))
        try memory.writeInteger(physical: Self.regionAddress + UInt64(ShadowStub.idleCountdownOffset), UInt64(41))
        XCTAssertTrue(region.isIntact(at: Self.regionAddress, in: view), "S's loop counts its idle countdown down")
    }

    func testAnyOtherByteChangedIsTampering() throws {
        let (region, memory, view) = try setUp()
        for offset in [0, ShadowStub.trapOffset, ShadowStub.idleCountdownOffset - 1, ShadowStub.idleCountdownOffset + 8,
                       ForkCode.offset, region.firstPage.count - 1] {
            let address = Self.regionAddress + UInt64(offset)
            let original: UInt8 = try memory.readInteger(physical: address)
            try memory.writeInteger(physical: address, original ^ 0xFF)
            XCTAssertFalse(region.isIntact(at: Self.regionAddress, in: view), "byte \(offset) changed")
            try memory.writeInteger(physical: address, original)
        }
        XCTAssertTrue(region.isIntact(at: Self.regionAddress, in: view))
    }

    func testAPageThatCannotBeReadIsNotIntact() throws {
        let (region, _, view) = try setUp()
        XCTAssertFalse(region.isIntact(at: 0x1_0000_0000, in: view), "above the identity map: not mapped")
    }
}
