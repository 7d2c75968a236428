import XCTest
@testable import VMM

final class BzImageTests: XCTestCase {
    func testParsesSyntheticHeaderFields() throws {
        let bytes = SyntheticImage.bzImage(setupSects: 4, payloadSize: 8192, prefAddress: 0x100_0000,
                                           initSize: 0x123_4000, cmdlineSize: 2047, fillSector: 0xFF)
        let image = try loadBzImage(bytes)
        let header = image.header
        XCTAssertEqual(header.setupSects, 4)
        XCTAssertEqual(header.version, 0x020F)
        XCTAssertEqual(header.protectedModeOffset, 5 * 512)
        XCTAssertEqual(header.protectedModeSize, 8192)
        XCTAssertEqual(header.prefAddress, 0x100_0000)
        XCTAssertEqual(header.initSize, 0x123_4000)
        XCTAssertEqual(header.kernelAlignment, 0x20_0000)
        XCTAssertTrue(header.relocatableKernel)
        XCTAssertEqual(header.cmdlineSize, 2047)
        XCTAssertEqual(header.initrdAddrMax, 0x7FFF_FFFF)
        XCTAssertEqual(header.headerEnd, 0x26C)
        XCTAssertEqual(image.kernelVersion, "6.1.0-synthetic (test) #1")
        XCTAssertEqual(Array(try image.protectedModeKernel.readAll().prefix(3)), [1, 8, 15])
        XCTAssertEqual(image.protectedModeKernel.count, 8192)
    }

    /// A relocatable kernel whose aligned preferred address plus `init_size`
    /// passes 2^64 is refused when parsed (so `image-info` refuses it too),
    /// naming both fields, instead of trapping in the boot loader's sum.
    func testPreferredAddressPlusInitSizeOverflowIsRefused() {
        let bytes = SyntheticImage.bzImage(prefAddress: 0xFFFF_FFFF_FFE0_0000, initSize: 0x40_0000)
        XCTAssertThrowsError(try loadBzImage(bytes)) { error in
            guard case let BootError.malformedHeader(field, _)? = error as? BootError else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "pref_address + init_size")
            XCTAssertTrue("\(error)".contains("overflows"), "\(error)")
        }
        // A non-relocatable kernel runs at pref_address too.
        let fixed = SyntheticImage.bzImage(prefAddress: 0xFFFF_FFFF_FFFF_F000, initSize: 0x1000_0000, relocatable: false)
        XCTAssertThrowsError(try loadBzImage(fixed)) { error in
            guard case BootError.malformedHeader("pref_address + init_size", _)? = error as? BootError else { return XCTFail("\(error)") }
        }
    }

    /// Sizes near 2^64 round up to MiB without wrapping to 0.
    func testMebibytesOfHugeSizesDoesNotWrap() {
        XCTAssertEqual(mebibytes(UInt64.max), 1 << 44)
        XCTAssertEqual(mebibytes(1), 1)
        XCTAssertEqual(mebibytes(1 << 20), 1)
        XCTAssertEqual(mebibytes(0), 0)
    }

    func testZeroSetupSectsMeansFour() throws {
        let image = try loadBzImage(SyntheticImage.bzImage(setupSects: 0))
        XCTAssertEqual(image.header.setupSects, 4)
        XCTAssertEqual(image.header.protectedModeOffset, 5 * 512)
    }

    func testTruncatedFileIsAnError() {
        let bytes = SyntheticImage.bzImage(payloadSize: 4096)
        XCTAssertThrowsError(try loadBzImage(Array(bytes.dropLast(1)))) { error in
            guard case let BootError.truncated(_, needed, actual)? = error as? BootError else {
                return XCTFail("expected truncated, got \(error)")
            }
            XCTAssertEqual(needed, bytes.count)
            XCTAssertEqual(actual, bytes.count - 1)
        }
        // Cut inside the header itself.
        XCTAssertThrowsError(try loadBzImage(Array(bytes.prefix(0x240)))) { error in
            guard case BootError.truncated? = error as? BootError else { return XCTFail("\(error)") }
        }
    }

    func testOldProtocolIsRejectedWithVersionInMessage() {
        XCTAssertThrowsError(try loadBzImage(SyntheticImage.bzImage(version: 0x020A))) { error in
            XCTAssertEqual(error as? BootError, .protocolTooOld(version: 0x020A, required: 0x020C))
            XCTAssertTrue("\(error)".contains("2.10"), "\(error)")
            XCTAssertTrue("\(error)".contains("2.12"), "\(error)")
        }
    }

    func testKernelWithout64BitEntryIsRejected() {
        XCTAssertThrowsError(try loadBzImage(SyntheticImage.bzImage(xloadflags: 0x2))) { error in
            XCTAssertEqual(error as? BootError, .no64BitEntry(xloadflags: 0x2))
        }
    }

    func testBadBootFlagAndGarbage() {
        var bytes = SyntheticImage.bzImage()
        bytes[0x1FE] = 0
        XCTAssertThrowsError(try loadBzImage(bytes)) { error in
            XCTAssertEqual(error as? BootError, .badBootFlag(found: 0xAA00))
        }
        let garbage = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        XCTAssertThrowsError(try loadKernel(garbage)) { error in
            guard case BootError.notAKernel? = error as? BootError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try loadKernel([1, 2, 3])) { error in
            guard case BootError.notAKernel? = error as? BootError else { return XCTFail("\(error)") }
        }
    }

    func testPayloadOutsideKernelIsMalformed() {
        var bytes = SyntheticImage.bzImage(payloadSize: 4096)
        SyntheticImage.put(UInt32(4000), at: 0x248, in: &bytes)
        SyntheticImage.put(UInt32(200), at: 0x24C, in: &bytes)
        XCTAssertThrowsError(try loadBzImage(bytes)) { error in
            guard case BootError.malformedHeader? = error as? BootError else { return XCTFail("\(error)") }
        }
    }

    func testImageInfoReportNamesFlags() throws {
        var bytes = SyntheticImage.bzImage(xloadflags: 0x3)
        bytes[0x211] = 0x81  // LOADED_HIGH | CAN_USE_HEAP
        let report = Dictionary(uniqueKeysWithValues: try loadBzImage(bytes).imageInfoReport())
        XCTAssertEqual(report["boot protocol"], "2.15")
        XCTAssertEqual(report["loadflags"], "0x81 LOADED_HIGH CAN_USE_HEAP")
        XCTAssertEqual(report["xloadflags"], "0x3 XLF_KERNEL_64 XLF_CAN_BE_LOADED_ABOVE_4G")
        XCTAssertEqual(report["kernel version"], "6.1.0-synthetic (test) #1")
        XCTAssertEqual(report["setup sectors"], "4")
        XCTAssertEqual(report["command line size"], "2047")
    }

    func testLoadReportsMissingFileWithErrno() {
        XCTAssertThrowsError(try KernelImage.load(path: "/nonexistent/swvmm/bzImage")) { error in
            XCTAssertEqual(error as? BootError, .fileUnreadable(path: "/nonexistent/swvmm/bzImage", errno: ENOENT))
            XCTAssertTrue("\(error)".contains("No such file"), "\(error)")
        }
    }

    func testLoadReadsFileFromDisk() throws {
        let path = NSTemporaryDirectory() + "swvmm-bz-\(getpid())"
        let bytes = SyntheticImage.bzImage()
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        guard case let .bzImage(image) = try KernelImage.load(path: path) else { return XCTFail("not a bzImage") }
        XCTAssertEqual(image.setup, Array(bytes.prefix(image.header.protectedModeOffset)))
        XCTAssertEqual(try image.protectedModeKernel.readAll(), Array(bytes[image.header.protectedModeOffset...]))
        XCTAssertEqual(image.kernelVersion, "6.1.0-synthetic (test) #1")
    }
}
