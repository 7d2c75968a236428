import Foundation
import XCTest
@testable import VMM

/// A real vmlinux (images/out/vmlinux*, or $SWVMM_IMAGES_DIR) against its raw ELF header bytes.
final class ElfKernelRealImageTests: XCTestCase {
    private func vmlinuxPath() throws -> String {
        let dir = ProcessInfo.processInfo.environment["SWVMM_IMAGES_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("images/out").path
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("vmlinux") }
        guard let name = names.sorted().first else { throw XCTSkip("no vmlinux in \(dir); run `make images`") }
        return dir + "/" + name
    }

    func testRealVmlinux() throws {
        let path = try vmlinuxPath()
        let raw = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        func u64(_ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(raw[o + $1]) << (8 * $1) } }
        func u16(_ o: Int) -> Int { Int(raw[o]) | Int(raw[o + 1]) << 8 }
        guard case let .elf(kernel) = try KernelImage.load(path: path) else { return XCTFail("\(path) is not ELF") }
        XCTAssertEqual(kernel.entryPoint, u64(24), "x86-64 vmlinux e_entry is already physical (startup_64)")
        let phoff = Int(u64(32)), size = u16(54)
        let loads = (0..<u16(56)).map { phoff + $0 * size }.filter { raw[$0] == 1 }
        XCTAssertEqual(kernel.segments.map(\.physicalAddress), loads.map { u64($0 + 24) })
        XCTAssertEqual(kernel.segments.map(\.memorySize), loads.map { u64($0 + 40) })

        let memory = try GuestMemory(size: 256 << 20)
        let plan = try BootLoader.load(.elf(kernel), configuration: BootConfiguration(
            memoryRegions: memory.regions, cpuCount: 1, commandLine: "console=ttyS0"), into: memory)
        XCTAssertEqual(plan.registers.rip, kernel.entryPoint)
        let first = try XCTUnwrap(kernel.segments.first)
        XCTAssertEqual(try memory.readBytes(physical: first.physicalAddress, count: 64), Array(try first.contents.readAll().prefix(64)))
    }
}
