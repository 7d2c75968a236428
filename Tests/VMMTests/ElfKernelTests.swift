import XCTest
@testable import VMM

final class ElfKernelTests: XCTestCase {
    func testVirtualEntryIsTranslatedToPhysical() throws {
        let elf = SyntheticImage.elf64(entry: 0xFFFF_FFFF_8100_0010, segments: [
            .init(virtualAddress: 0xFFFF_FFFF_8100_0000, physicalAddress: 0x100_0000, contents: [1, 2, 3], memorySize: 0x100),
        ])
        XCTAssertEqual(try loadElfKernel(elf).entryPoint, 0x100_0010)
    }

    func testOnlyLoadSegmentsAreKept() throws {
        let elf = SyntheticImage.elf64(entry: 0x20_0000, segments: [
            .init(virtualAddress: 0x20_0000, physicalAddress: 0x20_0000, contents: [1], memorySize: 1),
            .init(type: 4, virtualAddress: 0, physicalAddress: 0, contents: [9, 9], memorySize: 2),  // PT_NOTE
            .init(virtualAddress: 0x30_0000, physicalAddress: 0x30_0000, contents: [2, 3], memorySize: 0x1000),
        ])
        let kernel = try loadElfKernel(elf)
        XCTAssertEqual(kernel.segments.map(\.physicalAddress), [0x20_0000, 0x30_0000])
        XCTAssertEqual(try kernel.segments.map { try $0.contents.readAll() }, [[1], [2, 3]])
        XCTAssertEqual(kernel.end, 0x30_1000)
    }

    func testRejectsWrongMachineAndBadEntry() {
        let arm = SyntheticImage.elf64(machine: 183, entry: 0x1000, segments: [
            .init(virtualAddress: 0x1000, physicalAddress: 0x1000, contents: [0], memorySize: 1),
        ])
        XCTAssertThrowsError(try loadElfKernel(arm)) { error in
            XCTAssertEqual(error as? BootError, .notX86_64(elfClass: 2, machine: 183))
        }
        let lost = SyntheticImage.elf64(entry: 0x9999_0000, segments: [
            .init(virtualAddress: 0x1000, physicalAddress: 0x1000, contents: [0], memorySize: 1),
        ])
        XCTAssertThrowsError(try loadElfKernel(lost)) { error in
            XCTAssertEqual(error as? BootError, .entryOutsideSegments(entry: 0x9999_0000))
        }
        let empty = SyntheticImage.elf64(entry: 0x1000, segments: [])
        XCTAssertThrowsError(try loadElfKernel(empty)) { error in
            XCTAssertEqual(error as? BootError, .noLoadableSegments)
        }
    }

    func testSegmentPastEndOfFileIsAnError() {
        let elf = SyntheticImage.elf64(entry: 0x1000, segments: [
            .init(virtualAddress: 0x1000, physicalAddress: 0x1000, contents: [UInt8](repeating: 5, count: 100), memorySize: 100),
        ])
        XCTAssertThrowsError(try loadKernel(Array(elf.dropLast(10)))) { error in
            guard case BootError.elf? = error as? BootError else { return XCTFail("\(error)") }
        }
    }

    func testShortOrForeignHeadersAreClearErrors() {
        // An ELF32 i386 header: libelf reads it; the loader refuses its class and machine.
        var elf32: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, 1, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
        elf32 += [2, 0, 3, 0, 1, 0, 0, 0] + [UInt8](repeating: 0, count: 12)
        elf32 += [52, 0, 32, 0, 0, 0, 40, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 4096)
        XCTAssertThrowsError(try loadElfKernel(elf32)) { error in
            XCTAssertEqual(error as? BootError, .notX86_64(elfClass: 1, machine: 3))
            XCTAssertTrue("\(error)".contains("not x86-64"), "\(error)")
        }
        // The ELF magic and half a header.
        let valid = SyntheticImage.elf64(entry: 0x1000, segments: [
            .init(virtualAddress: 0x1000, physicalAddress: 0x1000, contents: [0], memorySize: 1),
        ])
        XCTAssertThrowsError(try loadKernel(Array(valid.prefix(40)))) { error in
            guard case BootError.elf? = error as? BootError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".hasPrefix("ELF kernel: "), "\(error)")
        }
        // A big-endian x86-64 header is not what the loader runs.
        var bigEndian = valid
        bigEndian[5] = 2
        XCTAssertThrowsError(try loadElfKernel(bigEndian)) { error in
            guard let error = error as? BootError else { return XCTFail("\(error)") }
            switch error {
            case .notX86_64, .elf: break
            default: XCTFail("\(error)")
            }
        }
    }
}
