import XCTest
@testable import VMM

final class CPUIDTests: XCTestCase {
    private let supported = [
        CPUIDEntry(function: 0, eax: 0x1F, ebx: 0x6874_7541, ecx: 0x444D_4163, edx: 0x6974_6E65),
        CPUIDEntry(function: 1, eax: 0x00A0_0F11, ebx: 0x0F80_0800, ecx: 0x7ED8_3203 | 1 << 13, edx: 0x178B_FBFF),
        CPUIDEntry(function: 4, index: 0, flags: 1, eax: 0xFC00_4121),
        CPUIDEntry(function: 0xB, index: 0, flags: 1, eax: 1, ebx: 2, ecx: 0x100, edx: 7),
        CPUIDEntry(function: 0xB, index: 1, flags: 1, eax: 7, ebx: 64, ecx: 0x201, edx: 7),
        CPUIDEntry(function: 0x4000_0001, eax: 0x0100_07FB),
    ]

    private func entry(_ table: [CPUIDEntry], _ function: UInt32, _ index: UInt32 = 0) -> CPUIDEntry? {
        table.first { $0.function == function && $0.index == index }
    }

    func testLeafOneCarriesAPICIdAndCountAndHypervisorBit() throws {
        let table = CPUIDNormalizer.normalize(supported, vcpuIndex: 3, cpuCount: 4, clearCX16: true)
        let leaf1 = try XCTUnwrap(entry(table, 1))
        XCTAssertEqual(leaf1.ebx >> 24, 3)
        XCTAssertEqual((leaf1.ebx >> 16) & 0xFF, 4)
        XCTAssertEqual(leaf1.ebx & 0xFFFF, 0x0800, "CLFLUSH size and brand index kept")
        XCTAssertNotEqual(leaf1.ecx & (1 << 31), 0)
        XCTAssertEqual(leaf1.ecx & (1 << 13), 0, "CX16 cleared")
        XCTAssertNotEqual(leaf1.edx & (1 << 28), 0, "HTT with several CPUs")
        XCTAssertEqual(leaf1.eax, 0x00A0_0F11)

        let keep = CPUIDNormalizer.normalize(supported, vcpuIndex: 0, cpuCount: 1, clearCX16: false)
        XCTAssertNotEqual(try XCTUnwrap(entry(keep, 1)).ecx & (1 << 13), 0, "CX16 kept when not asked")
    }

    func testTopologyLeaves() throws {
        let table = CPUIDNormalizer.normalize(supported, vcpuIndex: 2, cpuCount: 3, clearCX16: false)
        let leaves = table.filter { $0.function == 0xB }
        XCTAssertEqual(leaves.map(\.index), [0, 1, 2])
        XCTAssertTrue(leaves.allSatisfy { $0.edx == 2 && $0.flags == CPUIDEntry.significantIndex })
        XCTAssertEqual(leaves[0].ebx, 1)
        XCTAssertEqual((leaves[0].ecx >> 8) & 0xFF, 1, "SMT level")
        XCTAssertEqual(leaves[1].ebx, 3)
        XCTAssertEqual(leaves[1].eax, 2, "3 CPUs need 2 APIC-id bits")
        XCTAssertEqual((leaves[1].ecx >> 8) & 0xFF, 2, "core level")
        XCTAssertEqual((leaves[2].ecx >> 8) & 0xFF, 0, "enumeration ends")
        XCTAssertNil(entry(table, 0x1F), "no 0x1F added when the host has none")
        XCTAssertEqual(try XCTUnwrap(entry(table, 4)).eax >> 26, 2, "leaf 4 cores - 1")
        XCTAssertEqual(try XCTUnwrap(entry(table, 4)).eax & 0x03FF_FFFF, 0x4121)
    }

    func testHypervisorSignatureIsKVMs() throws {
        let table = CPUIDNormalizer.normalize(supported, vcpuIndex: 0, cpuCount: 1, clearCX16: false)
        let leaf = try XCTUnwrap(entry(table, 0x4000_0000))
        var bytes: [UInt8] = []
        for register in [leaf.ebx, leaf.ecx, leaf.edx] { bytes += withUnsafeBytes(of: register.littleEndian, Array.init) }
        XCTAssertEqual(bytes, Array("KVMKVMKVM".utf8) + [0, 0, 0])
        XCTAssertEqual(leaf.eax, 0x4000_0001)
        XCTAssertEqual(table.filter { $0.function == 0x4000_0000 }.count, 1)
        XCTAssertEqual(entry(table, 0x4000_0001)?.eax, 0x0100_07FB, "KVM features leaf kept")
    }
}
