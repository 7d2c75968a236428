import Foundation
import XCTest
@testable import VMM

/// Builders for synthetic kernel images, written from the field tables in
/// boot.rst and the ELF gABI (not from any loader's code).
enum SyntheticImage {
    static func put<T: FixedWidthInteger>(_ value: T, at offset: Int, in bytes: inout [UInt8]) {
        for index in 0..<MemoryLayout<T>.size { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }

    /// A bzImage with `setupSects` setup sectors and `payloadSize` bytes of protected-mode code.
    static func bzImage(setupSects: UInt8 = 4, version: UInt16 = 0x020F, xloadflags: UInt16 = 0x1,
                        payloadSize: Int = 4096, prefAddress: UInt64 = 0x100_0000, initSize: UInt32 = 0x80_0000,
                        relocatable: Bool = true, kernelAlignment: UInt32 = 0x20_0000, cmdlineSize: UInt32 = 2047,
                        initrdAddrMax: UInt32 = 0x7FFF_FFFF, versionString: String? = "6.1.0-synthetic (test) #1",
                        fillSector: UInt8 = 0) -> [UInt8] {
        let sects = setupSects == 0 ? 4 : Int(setupSects)
        let setupSize = (sects + 1) * 512
        var bytes = [UInt8](repeating: 0, count: setupSize + payloadSize)
        // Like 6.1.88+: the boot sector around the header is 0xFF-filled.
        for index in 0..<0x1F1 { bytes[index] = fillSector }
        bytes[0x1F1] = setupSects
        put(UInt32(payloadSize / 16), at: 0x1F4, in: &bytes)
        put(UInt16(0xAA55), at: 0x1FE, in: &bytes)
        bytes[0x200] = 0xEB
        bytes[0x201] = 0x6A  // header ends at 0x26C (protocol 2.15)
        bytes.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
        put(version, at: 0x206, in: &bytes)
        if let versionString {
            let offset = 0x400
            bytes.replaceSubrange(offset..<(offset + versionString.utf8.count), with: Array(versionString.utf8))
            put(UInt16(offset - 0x200), at: 0x20E, in: &bytes)
        }
        bytes[0x211] = 0x01  // LOADED_HIGH
        put(UInt32(0x10_0000), at: 0x214, in: &bytes)
        put(initrdAddrMax, at: 0x22C, in: &bytes)
        put(kernelAlignment, at: 0x230, in: &bytes)
        bytes[0x234] = relocatable ? 1 : 0
        bytes[0x235] = 21
        put(xloadflags, at: 0x236, in: &bytes)
        put(cmdlineSize, at: 0x238, in: &bytes)
        put(prefAddress, at: 0x258, in: &bytes)
        put(initSize, at: 0x260, in: &bytes)
        // A recognisable protected-mode payload.
        for index in 0..<payloadSize { bytes[setupSize + index] = UInt8(truncatingIfNeeded: index &* 7 &+ 1) }
        for index in 0x26C..<0x290 { bytes[index] = fillSector }  // past the header, still sector 1
        return bytes
    }

    struct ElfSegment {
        var type: UInt32 = 1
        var virtualAddress: UInt64
        var physicalAddress: UInt64
        var contents: [UInt8]
        var memorySize: UInt64
    }

    /// An ELF64 executable with only program headers (no sections).
    static func elf64(machine: UInt16 = 62, elfClass: UInt8 = 2, entry: UInt64, segments: [ElfSegment]) -> [UInt8] {
        let ehdrSize = 64, phdrSize = 56
        var dataOffset = ehdrSize + phdrSize * segments.count
        var bytes = [UInt8](repeating: 0, count: dataOffset)
        bytes.replaceSubrange(0..<4, with: [0x7F, 0x45, 0x4C, 0x46])
        bytes[4] = elfClass
        bytes[5] = 1  // little-endian
        bytes[6] = 1  // EV_CURRENT
        put(UInt16(2), at: 16, in: &bytes)  // ET_EXEC
        put(machine, at: 18, in: &bytes)
        put(UInt32(1), at: 20, in: &bytes)
        put(entry, at: 24, in: &bytes)
        put(UInt64(segments.isEmpty ? 0 : ehdrSize), at: 32, in: &bytes)  // e_phoff, 0 when there is no table (gABI)
        put(UInt16(ehdrSize), at: 52, in: &bytes)
        put(UInt16(phdrSize), at: 54, in: &bytes)
        put(UInt16(segments.count), at: 56, in: &bytes)
        put(UInt16(64), at: 58, in: &bytes)  // e_shentsize
        for (index, segment) in segments.enumerated() {
            let base = ehdrSize + index * phdrSize
            put(segment.type, at: base, in: &bytes)
            put(UInt32(5), at: base + 4, in: &bytes)  // R+X
            put(UInt64(dataOffset), at: base + 8, in: &bytes)
            put(segment.virtualAddress, at: base + 16, in: &bytes)
            put(segment.physicalAddress, at: base + 24, in: &bytes)
            put(UInt64(segment.contents.count), at: base + 32, in: &bytes)
            put(segment.memorySize, at: base + 40, in: &bytes)
            put(UInt64(0x1000), at: base + 48, in: &bytes)
            dataOffset += segment.contents.count
        }
        for segment in segments { bytes += segment.contents }
        return bytes
    }
}

extension XCTestCase {
    /// `bytes` written to a scratch file (removed at teardown): the path the
    /// product takes, which streams kernels from their files.
    func scratchFile(_ bytes: [UInt8], name: String = "image") throws -> String {
        let path = NSTemporaryDirectory() + "swvmm-\(name)-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { unlink(path) }
        return path
    }

    /// `bytes` loaded as a kernel file, the way `swvmm run` loads one.
    func loadKernel(_ bytes: [UInt8]) throws -> KernelImage {
        try KernelImage.load(path: try scratchFile(bytes, name: "kernel"))
    }

    /// `bytes` loaded as an ELF vmlinux file.
    func loadElfKernel(_ bytes: [UInt8]) throws -> ElfKernel {
        guard case let .elf(kernel) = try loadKernel(bytes) else {
            throw BootError.notAKernel(reason: "synthetic image did not load as ELF")
        }
        return kernel
    }

    /// `bytes` loaded as a bzImage file.
    func loadBzImage(_ bytes: [UInt8]) throws -> BzImage {
        guard case let .bzImage(image) = try loadKernel(bytes) else {
            throw BootError.notAKernel(reason: "synthetic image did not load as a bzImage")
        }
        return image
    }
}
