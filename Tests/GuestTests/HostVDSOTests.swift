import Foundation
import XCTest
@testable import Guest

/// Real-world check against this test process's own vDSO: its bytes are
/// copied into fake guest RAM and mapped at the same virtual addresses, so the
/// locator and the finder run through real page walks on real kernel code.
final class HostVDSOTests: XCTestCase {
    static let physicalBase: UInt64 = 0x100_0000
    static let stackPage: UInt64 = 0x7FFD_0000_0000

    /// Reads a /proc file to its end (they report size 0, so read until EOF).
    func readProcFile(_ path: String) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw XCTSkip("cannot open \(path)") }
        defer { try? handle.close() }
        return Array(handle.readDataToEndOfFile())
    }

    /// `[vdso]` bounds from /proc/self/maps, or nil.
    func hostVDSORange() throws -> Range<UInt64>? {
        let maps = String(decoding: try readProcFile("/proc/self/maps"), as: UTF8.self)
        guard let line = maps.split(separator: "\n").first(where: { $0.hasSuffix("[vdso]") }),
              let bounds = line.split(separator: " ").first?.split(separator: "-"), bounds.count == 2,
              let start = UInt64(bounds[0], radix: 16), let end = UInt64(bounds[1], radix: 16), start < end
        else { return nil }
        return start ..< end
    }

    struct FakeGuest {
        let memory: SparsePhysicalMemory
        let tables: PageTableBuilder
        let view: GuestView
        let bytes: [UInt8]
        let range: Range<UInt64>
    }

    /// Maps a copy of the host vDSO read-only, user, executable at its own address.
    func fakeGuestWithHostVDSO() throws -> FakeGuest {
        guard let range = try hostVDSORange() else { throw XCTSkip("this process has no [vdso] mapping") }
        guard let pointer = UnsafeRawPointer(bitPattern: UInt(range.lowerBound)) else { throw XCTSkip("vDSO at address 0") }
        let bytes = Array(UnsafeRawBufferPointer(start: pointer, count: Int(range.upperBound - range.lowerBound)))
        let memory = SparsePhysicalMemory(size: 1 << 32)
        let tables = PageTableBuilder(memory: memory, fiveLevel: range.upperBound > 0x8000_0000_0000)
        for offset in stride(from: 0, to: bytes.count, by: 0x1000) {
            let physical = Self.physicalBase + UInt64(offset)
            try tables.map4K(range.lowerBound + UInt64(offset), to: physical, flags: PTE.present | PTE.user)
            try memory.writeBytes(physical: physical, bytes[offset ..< min(bytes.count, offset + 0x1000)])
        }
        return FakeGuest(memory: memory, tables: tables, view: GuestView(memory: memory, context: tables.context),
                         bytes: bytes, range: range)
    }

    func testFinderFindsSyscallSitesInHostVDSO() throws {
        let guest = try fakeGuestWithHostVDSO()
        // The kernel's own record of this process's auxv names the same base.
        let auxv = try readProcFile("/proc/self/auxv")
        let words = stride(from: 0, to: auxv.count - 7, by: 8).map { i in
            auxv[i ..< i + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        let ehdr = stride(from: 0, to: words.count - 1, by: 2).first { words[$0] == auxvSysinfoEHDR }.map { words[$0 + 1] }
        XCTAssertEqual(ehdr, guest.range.lowerBound)
        let location = try VDSOLocator(view: guest.view).inspect(base: guest.range.lowerBound)
        XCTAssertEqual(location.base, guest.range.lowerBound)
        XCTAssertTrue(location.text.lowerBound > guest.range.lowerBound && location.text.upperBound <= guest.range.upperBound,
                      "text \(location.text) outside \(guest.range)")

        let finder = SyscallSiteFinder(disassembler: try Disassembler())
        let sites = try finder.sites(in: guest.view, start: location.text.lowerBound,
                                     length: Int(location.text.upperBound - location.text.lowerBound))
        if sites.isEmpty { throw XCTSkip("the host vDSO's text has no syscall instruction (no fallback path)") }
        for site in sites {
            let offset = Int(site.virtual - guest.range.lowerBound)
            XCTAssertEqual(Array(guest.bytes[offset ..< offset + 2]), [0x0F, 0x05], "site \(site.virtual.guestHex)")
            XCTAssertEqual(site.physical, Self.physicalBase + UInt64(offset))
        }
        // The byte-buffer finder on the host's own bytes agrees with the guest-memory one.
        let textOffset = Int(location.text.lowerBound - guest.range.lowerBound)
        let textBytes = Array(guest.bytes[textOffset ..< textOffset + location.text.count])
        XCTAssertEqual(finder.sites(in: textBytes, startAddress: location.text.lowerBound, maxSites: 64),
                       sites.map(\.virtual))
    }

    func testAuxvScanFindsVDSOAmongDecoys() throws {
        let guest = try fakeGuestWithHostVDSO()
        let base = guest.range.lowerBound
        let stack = Self.stackPage
        try guest.tables.map4K(stack, to: 0x200_0000)
        try guest.tables.map4K(stack + 0x1000, to: 0x200_1000)
        // Decoys first: 33 followed by values that are not vDSO headers.
        let words: [UInt64] = [2, stack + 0x100, 0, 33, 0x1234, 33, 0x5555_0000_0000, 33, base + 0x1000,
                               6, 4096, 33, base, 0, 0]
        var bytes: [UInt8] = []
        for word in words { withUnsafeBytes(of: word.littleEndian) { bytes += $0 } }
        // Straddle the page boundary to exercise the page-by-page read.
        let sp = stack + 0x1000 - 48
        try guest.view.write(virtual: sp, bytes)
        let locator = VDSOLocator(view: guest.view)
        XCTAssertEqual(try locator.findAuxvValue(type: auxvSysinfoEHDR, stackPointer: sp, maxPages: 2), base)
        // Too narrow a bound (one page: the pair is in the second) finds nothing.
        XCTAssertNil(try locator.findAuxvValue(type: auxvSysinfoEHDR, stackPointer: sp, maxPages: 1))
        XCTAssertEqual(try locator.locate(stackPointer: sp, hint: nil)?.base, base)
        // Without a stack, a hint range that starts at unmapped pages still finds it.
        XCTAssertEqual(try locator.locate(in: (base - 0x4000) ..< guest.range.upperBound)?.base, base)
    }

    func testLocatorRejectsNonELFAndHostileHeaders() throws {
        let guest = try fakeGuestWithHostVDSO()
        let locator = VDSOLocator(view: guest.view)
        let page: UInt64 = 0x6000_0000
        try guest.tables.map4K(page, to: 0x300_0000)
        XCTAssertThrowsError(try locator.inspect(base: page)) {
            XCTAssertEqual($0 as? VDSOLocatorError, .notELF(base: page))
        }
        // The real header with a program-header offset far outside any image.
        var header = Array(guest.bytes[0 ..< 64])
        withUnsafeBytes(of: UInt64(0xFFFF_FFFF_0000_0000).littleEndian) { header.replaceSubrange(32 ..< 40, with: $0) }
        try guest.memory.writeBytes(physical: 0x300_0000, header)
        XCTAssertThrowsError(try locator.inspect(base: page)) {
            guard case .malformed? = $0 as? VDSOLocatorError else { return XCTFail("unexpected \($0)") }
        }
        // An absurd program-header count.
        header = Array(guest.bytes[0 ..< 64])
        header[56] = 0xFF; header[57] = 0xFF
        try guest.memory.writeBytes(physical: 0x300_0000, header)
        XCTAssertThrowsError(try locator.inspect(base: page))
        XCTAssertThrowsError(try locator.findAuxvValue(type: 33, stackPointer: 0, maxPages: 0))
        XCTAssertNil(try locator.findAuxvValue(type: 33, stackPointer: UInt64.max - 3))
    }
}
