import Foundation
import XCTest
@testable import VMM

/// Checks the parser against real kernels, when some are at hand:
/// $SWVMM_IMAGES_DIR, else images/out in the package (built by `make images`).
final class BzImageRealImageTests: XCTestCase {
    private func imagesDirectory() -> String {
        if let dir = ProcessInfo.processInfo.environment["SWVMM_IMAGES_DIR"], !dir.isEmpty { return dir }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return packageRoot.appendingPathComponent("images/out").path
    }

    private func bzImages() throws -> [String] {
        let dir = imagesDirectory()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        let images = names.filter { $0.hasPrefix("bzImage") || $0.hasPrefix("vmlinuz") }.sorted().map { dir + "/" + $0 }
        if images.isEmpty { throw XCTSkip("no kernel images in \(dir); run `make images`") }
        return images
    }

    /// `file(1)`'s own reading of the image: "..., version X, ..." up to the next comma.
    private func fileVersion(_ path: String) throws -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/file")
        process.arguments = ["-b", "-L", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch { throw XCTSkip("file(1) is not installed") }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard let range = output.range(of: "version ") else { return nil }
        return String(output[range.upperBound...].prefix { $0 != "," })
    }

    func testRealImagesMatchIndependentReadings() throws {
        for path in try bzImages() {
            let raw = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
            guard case let .bzImage(image) = try KernelImage.load(path: path) else {
                XCTFail("\(path) did not parse as a bzImage"); continue
            }
            let h = image.header
            // Raw bytes at boot.rst offsets, read here without the parser.
            XCTAssertEqual(h.version, UInt16(raw[0x206]) | UInt16(raw[0x207]) << 8, path)
            XCTAssertEqual(h.setupSects, raw[0x1F1] == 0 ? 4 : Int(raw[0x1F1]), path)
            XCTAssertEqual(h.protectedModeOffset + h.protectedModeSize, raw.count, "\(path): setup + syssize*16 is the file")
            XCTAssertNotEqual(h.xloadflags & 1, 0, path)
            XCTAssertGreaterThanOrEqual(h.initSize, UInt32(h.protectedModeSize), path)
            if let expected = try fileVersion(path) {
                XCTAssertEqual(image.kernelVersion.map { String($0.prefix { $0 != "," }) }, expected, path)
            }
            let report = Dictionary(uniqueKeysWithValues: image.imageInfoReport())
            XCTAssertEqual(report["boot protocol"], "\(raw[0x207]).\(raw[0x206] < 10 ? "0" : "")\(raw[0x206])", path)
        }
    }

    func testRealImageBootsIntoMemoryLayout() throws {
        guard let path = try bzImages().first else { return }
        guard case let .bzImage(image) = try KernelImage.load(path: path) else { return XCTFail(path) }
        let memory = try GuestMemory(size: 256 << 20)
        let plan = try BootLoader.load(.bzImage(image), configuration: BootConfiguration(
            memoryRegions: memory.regions, cpuCount: 2, commandLine: "console=ttyS0 earlyprintk=serial",
            initrd: ImageContents(file: try ImageFile(path: try scratchFile([UInt8](repeating: 0x30, count: 1 << 20), name: "initrd")))),
            into: memory)
        XCTAssertEqual(plan.registers.rip, plan.loadAddress + 0x200)
        XCTAssertGreaterThanOrEqual(plan.initrd?.address ?? 0, plan.kernelEnd)
        let loaded = try memory.readBytes(physical: plan.loadAddress, count: 4096)
        XCTAssertEqual(loaded, Array(try image.protectedModeKernel.readAll().prefix(4096)))
        let headerEnd = 0x202 + Int(image.setup[0x201])
        XCTAssertEqual(try memory.readBytes(physical: Layout.bootParamsAddress + 0x202, count: 4), Array("HdrS".utf8))
        XCTAssertEqual(try memory.readBytes(physical: Layout.bootParamsAddress + UInt64(headerEnd), count: 16),
                       [UInt8](repeating: 0, count: 16), "bytes past the header are not copied")
    }
}
