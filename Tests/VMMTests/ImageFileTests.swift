import Foundation
import Guest
import XCTest
@testable import VMM

/// Kernels and initrds read from files piecewise, straight into guest RAM.
final class ImageFileTests: XCTestCase {
    private func scratch(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "swvmm-\(name)-\(getpid())"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { unlink(path) }
        return path
    }

    func testTruncatedBzImageFileFailsBeforeLoading() throws {
        let bytes = SyntheticImage.bzImage(payloadSize: 4096)
        let path = try scratch("bz-short", Array(bytes.dropLast(1)))
        XCTAssertThrowsError(try KernelImage.load(path: path)) { error in
            guard case let BootError.truncated(_, needed, actual)? = error as? BootError else {
                return XCTFail("expected truncated, got \(error)")
            }
            XCTAssertEqual(needed, bytes.count)
            XCTAssertEqual(actual, bytes.count - 1)
        }
        let header = try scratch("bz-header", Array(bytes.prefix(0x240)))
        XCTAssertThrowsError(try KernelImage.load(path: header)) { error in
            guard case BootError.truncated? = error as? BootError else { return XCTFail("\(error)") }
        }
    }

    /// A FIFO is refused without waiting for a writer. So that a regression
    /// fails instead of hanging, a helper thread opens the write end (which
    /// succeeds only once a reader waits) for up to 3 s.
    func testFIFOIsRefusedWithoutBlocking() throws {
        let path = NSTemporaryDirectory() + "swvmm-fifo-\(getpid())"
        unlink(path)
        XCTAssertEqual(mkfifo(path, 0o600), 0)
        addTeardownBlock { unlink(path) }
        let unblocker = Thread {
            let deadline = Date().addingTimeInterval(3)
            while Date() < deadline {
                let fd = open(path, O_WRONLY | O_NONBLOCK)
                if fd >= 0 { close(fd); return }
                usleep(10_000)
            }
        }
        unblocker.start()
        let start = Date()
        XCTAssertThrowsError(try ImageFile(path: path)) { error in
            XCTAssertEqual(error as? BootError, .notARegularFile(path: path, kind: "a FIFO"))
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1, "open must not wait for a writer")
        XCTAssertThrowsError(try ImageContents.initrd(path: "/dev/zero")) { error in
            XCTAssertEqual(error as? BootError, .notARegularFile(path: "/dev/zero", kind: "a character device"))
        }
        let empty = try scratch("empty-initrd", [])
        XCTAssertThrowsError(try ImageContents.initrd(path: empty)) { error in
            XCTAssertEqual(error as? BootError, .emptyInitrd(path: empty))
        }
    }

    func testFileThatShrinksAfterOpeningIsTruncated() throws {
        let path = try scratch("shrinks", [UInt8](repeating: 1, count: 8192))
        let file = try ImageFile(path: path)
        XCTAssertEqual(truncate(path, 100), 0)
        let memory = try GuestMemory(size: 1 << 20)
        XCTAssertThrowsError(try ImageContents(file: file).copy(into: memory, at: 0x1000, what: "initrd")) { error in
            XCTAssertEqual(error as? BootError, .truncated(what: "initrd", needed: 8192, actual: 100))
        }
    }

    func testBzImageAndInitrdFromFilesLandInGuestMemory() throws {
        let bytes = SyntheticImage.bzImage(payloadSize: 8192)
        let image = try KernelImage.load(path: try scratch("bz", bytes))
        guard case let .bzImage(bz) = image else { return XCTFail("not a bzImage") }
        let initrdBytes = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let initrd = ImageContents(file: try ImageFile(path: try scratch("initrd", initrdBytes)))
        let memory = try GuestMemory(size: 64 << 20)
        let plan = try BootLoader.load(image, configuration: BootConfiguration(
            memoryRegions: memory.regions, cpuCount: 1, commandLine: "console=ttyS0", initrd: initrd), into: memory)
        XCTAssertEqual(try memory.readBytes(physical: plan.loadAddress, count: 8192),
                       Array(bytes[bz.header.protectedModeOffset...]))
        let placement = try XCTUnwrap(plan.initrd)
        XCTAssertEqual(try memory.readBytes(physical: placement.address, count: initrdBytes.count), initrdBytes)
    }

    func testElfKernelFromFileMatchesInMemoryParse() throws {
        let text = (0..<300).map { UInt8(truncatingIfNeeded: $0) }
        let elf = SyntheticImage.elf64(entry: 0xFFFF_FFFF_8100_0010, segments: [
            .init(virtualAddress: 0xFFFF_FFFF_8100_0000, physicalAddress: 0x100_0000, contents: text, memorySize: 0x2000),
            .init(type: 4, virtualAddress: 0, physicalAddress: 0, contents: [9, 9], memorySize: 2),  // PT_NOTE
        ])
        guard case let .elf(kernel) = try KernelImage.load(path: try scratch("elf", elf)) else { return XCTFail("not ELF") }
        XCTAssertEqual(kernel.entryPoint, 0x100_0010)
        XCTAssertEqual(kernel.segments.count, 1)
        XCTAssertEqual(try kernel.segments[0].contents.readAll(), text)
        XCTAssertEqual(kernel.end, 0x100_2000)
        let memory = try GuestMemory(size: 64 << 20)
        _ = try BootLoader.load(.elf(kernel), configuration: BootConfiguration(
            memoryRegions: memory.regions, cpuCount: 1, commandLine: ""), into: memory)
        XCTAssertEqual(try memory.readBytes(physical: 0x100_0000, count: text.count), text)
        XCTAssertEqual(try memory.readBytes(physical: 0x100_0000 + UInt64(text.count), count: 16), [UInt8](repeating: 0, count: 16))
    }

    func testElfFileErrors() throws {
        let arm = SyntheticImage.elf64(machine: 183, entry: 0x1000, segments: [
            .init(virtualAddress: 0x1000, physicalAddress: 0x1000, contents: [0], memorySize: 1),
        ])
        XCTAssertThrowsError(try KernelImage.load(path: try scratch("arm", arm))) { error in
            XCTAssertEqual(error as? BootError, .notX86_64(elfClass: 2, machine: 183))
        }
        let cut = SyntheticImage.elf64(entry: 0x1000, segments: [
            .init(virtualAddress: 0x1000, physicalAddress: 0x1000, contents: [UInt8](repeating: 5, count: 100), memorySize: 100),
        ])
        XCTAssertThrowsError(try KernelImage.load(path: try scratch("cut", Array(cut.dropLast(10))))) { error in
            guard case BootError.elf(.outOfBounds)? = error as? BootError else { return XCTFail("\(error)") }
        }
        // A segment inside the file whose p_filesz exceeds p_memsz: named for what it is,
        // not "outside the image".
        let bss = SyntheticImage.elf64(entry: 0x10_0000, segments: [
            .init(virtualAddress: 0x10_0000, physicalAddress: 0x10_0000, contents: [1, 2, 3, 4], memorySize: 2),
        ])
        XCTAssertThrowsError(try KernelImage.load(path: try scratch("filesz", bss))) { error in
            XCTAssertEqual(error as? BootError, .badLoadSegment(index: 0, detail: "p_filesz 4 is larger than p_memsz 2"))
            XCTAssertFalse("\(error)".contains("outside"), "\(error)")
        }
        let wrapping = SyntheticImage.elf64(entry: 0xFFFF_FFFF_FFFF_F000, segments: [
            .init(virtualAddress: 0xFFFF_FFFF_FFFF_F000, physicalAddress: 0xFFFF_FFFF_FFFF_F000, contents: [1], memorySize: 0x2000),
        ])
        XCTAssertThrowsError(try KernelImage.load(path: try scratch("wrap", wrapping))) { error in
            guard case let BootError.badLoadSegment(0, detail)? = error as? BootError else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("p_paddr 0xfffffffffffff000 + p_memsz 0x2000 overflows"), detail)
        }
        let empty = SyntheticImage.elf64(entry: 0x1000, segments: [])
        XCTAssertThrowsError(try KernelImage.load(path: try scratch("empty", empty))) { error in
            XCTAssertEqual(error as? BootError, .noLoadableSegments)
        }
    }

    /// The default (chunked) fill, used by memories other than `GuestMemory`.
    func testDefaultChunkedFillCoversEveryByte() throws {
        final class Recording: PhysicalMemory {
            var bytes = [UInt8](repeating: 0, count: 3 << 20)
            func read(physical address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {}
            func write(physical address: UInt64, from buffer: UnsafeRawBufferPointer) throws {
                guard address + UInt64(buffer.count) <= UInt64(bytes.count) else {
                    throw PhysicalMemoryError.outOfRange(address: address, length: buffer.count)
                }
                bytes.replaceSubrange(Int(address)..<(Int(address) + buffer.count), with: buffer)
            }
        }
        let memory = Recording()
        let count = (2 << 20) + 5
        try memory.write(physical: 7, count: count) { buffer, done in
            for index in 0..<buffer.count { buffer[index] = UInt8(truncatingIfNeeded: (done + index) % 251) }
        }
        XCTAssertEqual(memory.bytes[7 + count - 1], UInt8((count - 1) % 251))
        XCTAssertEqual(memory.bytes[7 + (1 << 20)], UInt8((1 << 20) % 251))
        XCTAssertEqual(memory.bytes[7 + count], 0)
    }
}
