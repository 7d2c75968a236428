import XCTest
@testable import VMM

final class ElfKernelTests: XCTestCase {
    func testVirtualEntryIsTranslatedToPhysical() throws {
        let elf = SyntheticImage.elf64(entry: 0xFFFF_FFFF_8100_0010, segments: [
            .init(virtualAddress: 0xFFFF_FFFF_8100_0000, physicalAddress: 0x100_0000, contents: [1, 2, 3], memorySize: 0x100),
        ])
        XCTAssertEqual(try ElfKernel(bytes: elf).entryPoint, 0x100_0010)
    }

    func testOnlyLoadSegmentsAreKept() throws {
        let elf = SyntheticImage.elf64(entry: 0x20_0000, segments: [
            .init(virtualAddress: 0x20_0000, physicalAddress: 0x20_0000, contents: [1], memorySize: 1),
            .init(type: 4, virtualAddress: 0, physicalAddress: 0, contents: [9, 9], memorySize: 2),  // PT_NOTE
            .init(virtualAddress: 0x30_0000, physicalAddress: 0x30_0000, contents: [2, 3], memorySize: 0x1000),
        ])
        let kernel = try ElfKernel(bytes: elf)
        XCTAssertEqual(kernel.segments.map(\.physicalAddress), [0x20_0000, 0x30_0000])
        XCTAssertEqual(try kernel.segments.map { try $0.contents.readAll() }, [[1], [2, 3]])
        XCTAssertEqual(kernel.end, 0x30_1000)
    }

    func testRejectsWrongMachineAndBadEntry() {
        let arm = SyntheticImage.elf64(machine: 183, entry: 0x1000, segments: [
            .init(virtualAddress: 0x1000, physicalAddress: 0x1000, contents: [0], memorySize: 1),
        ])
        XCTAssertThrowsError(try ElfKernel(bytes: arm)) { error in
            XCTAssertEqual(error as? BootError, .notX86_64(elfClass: 2, machine: 183))
        }
        let lost = SyntheticImage.elf64(entry: 0x9999_0000, segments: [
            .init(virtualAddress: 0x1000, physicalAddress: 0x1000, contents: [0], memorySize: 1),
        ])
        XCTAssertThrowsError(try ElfKernel(bytes: lost)) { error in
            XCTAssertEqual(error as? BootError, .entryOutsideSegments(entry: 0x9999_0000))
        }
        let empty = SyntheticImage.elf64(entry: 0x1000, segments: [])
        XCTAssertThrowsError(try ElfKernel(bytes: empty)) { error in
            XCTAssertEqual(error as? BootError, .noLoadableSegments)
        }
    }

    func testSegmentPastEndOfFileIsAnError() {
        let elf = SyntheticImage.elf64(entry: 0x1000, segments: [
            .init(virtualAddress: 0x1000, physicalAddress: 0x1000, contents: [UInt8](repeating: 5, count: 100), memorySize: 100),
        ])
        XCTAssertThrowsError(try KernelImage.parse(bytes: Array(elf.dropLast(10)))) { error in
            guard case BootError.elf? = error as? BootError else { return XCTFail("\(error)") }
        }
    }
}
