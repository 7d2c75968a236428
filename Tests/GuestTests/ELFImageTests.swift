import Foundation
import XCTest
@testable import Guest

final class ELFImageTests: XCTestCase {
    /// The running test binary: a real x86-64 (or host-architecture) ELF with sections.
    private func selfImage() throws -> (ELFImage, [UInt8]) {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: "/proc/self/exe")))
        return (try ELFImage(bytes: bytes), bytes)
    }

    private func u16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
    private func u64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * $1) } }

    func testHeaderMatchesRawBytes() throws {
        let (image, bytes) = try selfImage()
        XCTAssertEqual(image.elfClass, bytes[4])
        XCTAssertEqual(image.machine, u16(bytes, 18))
        XCTAssertEqual(image.entry, u64(bytes, 24))
        XCTAssertEqual(image.programHeaders.count, Int(u16(bytes, 56)))
        let phoff = Int(u64(bytes, 32)), phentsize = Int(u16(bytes, 54))
        for (index, header) in image.programHeaders.enumerated() {
            let base = phoff + index * phentsize
            XCTAssertEqual(header.type, UInt32(truncatingIfNeeded: u64(bytes, base)))
            XCTAssertEqual(header.offset, u64(bytes, base + 8))
            XCTAssertEqual(header.virtualAddress, u64(bytes, base + 16))
            XCTAssertEqual(header.fileSize, u64(bytes, base + 32))
            XCTAssertEqual(header.memorySize, u64(bytes, base + 40))
        }
        XCTAssertFalse(image.loadSegments.isEmpty)
    }

    func testSectionLookup() throws {
        let (image, bytes) = try selfImage()
        let text = try XCTUnwrap(image.section(named: ".text"))
        XCTAssertGreaterThan(text.size, 0)
        let contents = try XCTUnwrap(try image.sectionContents(named: ".text"))
        XCTAssertEqual(contents, Array(bytes[Int(text.offset)..<Int(text.offset + text.size)]))
        XCTAssertEqual(try image.sectionContents(named: ".bss"), [], "NOBITS has no file bytes")
        XCTAssertNil(image.section(named: ".no-such-section"))
        let interp = try XCTUnwrap(try image.sectionContents(named: ".interp"))
        XCTAssertTrue(String(decoding: interp, as: UTF8.self).contains("ld-linux"))
    }

    func testGarbageAndTruncation() throws {
        XCTAssertThrowsError(try ELFImage(bytes: [UInt8](repeating: 0x41, count: 256))) { error in
            XCTAssertEqual(error as? ELFError, .notELF)
        }
        XCTAssertThrowsError(try ELFImage(bytes: [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1]))
        let (_, bytes) = try selfImage()
        // Keep the headers but cut the file well before its segments end.
        XCTAssertThrowsError(try ELFImage(bytes: bytes.prefix(4096))) { error in
            XCTAssertNotNil(error as? ELFError, "\(error)")
        }
    }

    /// The file path (what the kernel loader uses) reads the same headers as the memory path.
    func testFileDescriptorMatchesMemory() throws {
        let (fromMemory, bytes) = try selfImage()
        let fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let fromFile = try ELFImage(fileDescriptor: fd, size: bytes.count)
        XCTAssertEqual(fromFile.entry, fromMemory.entry)
        XCTAssertEqual(fromFile.programHeaders, fromMemory.programHeaders)
        XCTAssertEqual(fromFile.sections, fromMemory.sections)
        let load = try XCTUnwrap(fromFile.loadSegments.first { $0.fileSize > 0 })
        XCTAssertEqual(try fromFile.contents(of: load), try fromMemory.contents(of: load))
    }

    /// A file too short for its own ELF header is refused by libelf, not read past its end.
    func testShortFileIsRefused() throws {
        let path = NSTemporaryDirectory() + "swvmm-elf-short-\(getpid())"
        try Data([0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 24)).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        XCTAssertThrowsError(try ELFImage(fileDescriptor: fd, size: 32)) { error in
            XCTAssertNotNil(error as? ELFError, "\(error)")
        }
    }
}
