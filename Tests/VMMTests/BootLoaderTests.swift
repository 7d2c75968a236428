import XCTest
import Guest
@testable import VMM

final class BootLoaderTests: XCTestCase {
    private func configuration(_ memory: GuestMemory, cpus: Int = 2, commandLine: String = "console=ttyS0",
                               initrd: [UInt8]? = nil) throws -> BootConfiguration {
        BootConfiguration(memoryRegions: memory.regions, cpuCount: cpus, commandLine: commandLine,
                          initrd: try initrd.map { ImageContents(file: try ImageFile(path: try scratchFile($0, name: "initrd"))) })
    }

    func testBzImageBootLayout() throws {
        let memory = try GuestMemory(size: 64 << 20)
        let bytes = SyntheticImage.bzImage(payloadSize: 8192, prefAddress: 0x100_0000, initSize: 0x100_0000, fillSector: 0xFF)
        let image = try loadBzImage(bytes)
        let initrd = (0..<5000).map { UInt8(truncatingIfNeeded: $0) }
        let plan = try BootLoader.load(.bzImage(image), configuration: configuration(memory, initrd: initrd), into: memory)

        XCTAssertEqual(plan.loadAddress, 0x100_0000, "relocatable, aligned pref_address is used")
        XCTAssertEqual(plan.registers.rip, 0x100_0200)
        XCTAssertEqual(plan.kernelEnd, 0x200_0000)
        XCTAssertEqual(try memory.readBytes(physical: 0x100_0000, count: 8192), Array(bytes[(5 * 512)...]))

        // initrd: page-aligned, at the top of RAM.
        let placement = try XCTUnwrap(plan.initrd)
        XCTAssertEqual(placement.address, ((64 << 20) - 5000) & ~0xFFF)
        XCTAssertEqual(try memory.readBytes(physical: placement.address, count: 5000), initrd)

        // Zero page.
        let zp = Layout.bootParamsAddress
        let header = try memory.readBytes(physical: zp + 0x1F1, count: 0x26C - 0x1F1)
        XCTAssertEqual(header[0..<(0x210 - 0x1F1)], bytes[0x1F1..<0x210], "setup header copied up to type_of_loader")
        var start = try memory.readBytes(physical: zp, count: 0x1E8)
        XCTAssertEqual(start[0x70..<0x78].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) },
                       Layout.acpiTablesAddress, "acpi_rsdp_addr points at the RSDP")
        start.replaceSubrange(0x70..<0x78, with: repeatElement(0, count: 8))
        XCTAssertEqual(start, Array(repeating: 0, count: 0x1E8), "the 0xFF-filled boot sector is not copied")
        XCTAssertEqual(try memory.readInteger(physical: zp + 0x26C, as: UInt32.self), 0, "nothing past the header")
        XCTAssertEqual(try memory.readInteger(physical: zp + 0x210, as: UInt8.self), 0xFF)
        XCTAssertEqual(try memory.readInteger(physical: zp + 0x211, as: UInt8.self), 0x81, "LOADED_HIGH|CAN_USE_HEAP")
        XCTAssertEqual(try memory.readInteger(physical: zp + 0x228, as: UInt32.self), UInt32(Layout.commandLineAddress))
        XCTAssertEqual(try memory.readInteger(physical: zp + 0x218, as: UInt32.self), UInt32(placement.address))
        XCTAssertEqual(try memory.readInteger(physical: zp + 0x21C, as: UInt32.self), 5000)
        XCTAssertEqual(try memory.readInteger(physical: zp + 0x1E8, as: UInt8.self), 3)
        XCTAssertEqual(try memory.readInteger(physical: zp + 0x2D0 + 20 + 16, as: UInt32.self), 2, "second e820 entry reserved")
        XCTAssertEqual(try memory.readInteger(physical: zp + 0x2D0 + 40 + 8, as: UInt64.self), (64 << 20) - 0x10_0000)

        XCTAssertEqual(try memory.readBytes(physical: Layout.commandLineAddress, count: 14), Array("console=ttyS0\0".utf8))
        XCTAssertEqual(try memory.readBytes(physical: Layout.ebdaStart, count: 4), Array("_MP_".utf8))
        XCTAssertEqual(try memory.readInteger(physical: Layout.gdtAddress + 0x10, as: UInt64.self), 0x00AF_9B00_0000_FFFF)

        XCTAssertEqual(plan.registers.rip, plan.loadAddress + BzImage.entry64Offset)
        XCTAssertEqual(plan.registers.rsi, Layout.bootParamsAddress)
        XCTAssertEqual(plan.registers.rflags, 0x2)
        XCTAssertEqual(plan.specialRegisters.cr3, Layout.pageTableRootAddress)
        XCTAssertEqual(plan.specialRegisters.cr0 & 0x8000_0001, 0x8000_0001)
        XCTAssertEqual(plan.specialRegisters.efer, 0x500)
        XCTAssertEqual(plan.specialRegisters.cr4, 0x20)
        XCTAssertEqual(plan.specialRegisters.cs.selector, 0x10)
        XCTAssertEqual(plan.specialRegisters.ds.selector, 0x18)
        XCTAssertEqual(plan.specialRegisters.gdt, DescriptorTableRegister(base: 0x500, limit: 31))
        XCTAssertTrue(plan.msrs.contains { $0.index == 0x2FF && $0.value == 0x806 })
    }

    func testNonRelocatableKernelLoadsAtOneMiB() throws {
        let memory = try GuestMemory(size: 64 << 20)
        let image = try loadBzImage(SyntheticImage.bzImage(prefAddress: 0x100_0000, initSize: 0x40_0000, relocatable: false))
        let plan = try BootLoader.load(.bzImage(image), configuration: configuration(memory), into: memory)
        XCTAssertEqual(plan.loadAddress, 0x10_0000)
        XCTAssertEqual(plan.registers.rip, 0x10_0200)
        XCTAssertEqual(plan.kernelEnd, 0x140_0000, "runs at pref_address, so its working area ends there + init_size")
    }

    func testKernelTooBigForMemory() throws {
        let memory = try GuestMemory(size: 16 << 20)
        let image = try loadBzImage(SyntheticImage.bzImage(prefAddress: 0x100_0000, initSize: 0x100_0000))
        XCTAssertThrowsError(try BootLoader.load(.bzImage(image), configuration: configuration(memory), into: memory)) { error in
            guard case BootError.kernelDoesNotFit? = error as? BootError else { return XCTFail("\(error)") }
        }
    }

    func testInitrdThatDoesNotFitIsReported() throws {
        let memory = try GuestMemory(size: 40 << 20)
        let image = try loadBzImage(SyntheticImage.bzImage(prefAddress: 0x100_0000, initSize: 0x100_0000))
        let initrd = [UInt8](repeating: 1, count: 9 << 20)  // 32 MiB kernel end + 9 MiB > 40 MiB
        XCTAssertThrowsError(try BootLoader.load(.bzImage(image), configuration: configuration(memory, initrd: initrd),
                                                 into: memory)) { error in
            XCTAssertEqual(error as? BootError, .initrdDoesNotFit(size: 9 << 20, limit: 40 << 20, kernelEnd: 32 << 20))
            XCTAssertTrue("\(error)".hasPrefix("initrd (9 MiB) does not fit below 0x2800000"), "\(error)")
        }
    }

    func testInitrdRespectsInitrdAddrMax() throws {
        let memory = try GuestMemory(size: 128 << 20)
        let image = try loadBzImage(SyntheticImage.bzImage(initSize: 0x100_0000, initrdAddrMax: 0x3FF_FFFF))
        let plan = try BootLoader.load(.bzImage(image), configuration: configuration(memory, initrd: [1, 2, 3]), into: memory)
        XCTAssertEqual(plan.initrd?.address, 0x400_0000 - 0x1000)
    }

    func testCommandLineLimits() throws {
        XCTAssertThrowsError(try KernelCommandLine(String(repeating: "a", count: 300), kernelLimit: 255)) { error in
            XCTAssertEqual("\(error)", "command line is 300 bytes, the kernel accepts at most 255")
        }
        XCTAssertEqual(try KernelCommandLine(String(repeating: "a", count: 255), kernelLimit: 255).bytes.count, 256)
        let capacity = Int(Layout.commandLineCapacity)
        XCTAssertThrowsError(try KernelCommandLine(String(repeating: "a", count: capacity), kernelLimit: 1 << 20)) { error in
            XCTAssertEqual(error as? BootError, .commandLineTooLong(length: capacity, limit: capacity - 1))
        }
        XCTAssertThrowsError(try KernelCommandLine("a\0b", kernelLimit: 100)) { error in
            XCTAssertEqual(error as? BootError, .commandLineContainsNUL(offset: 1))
        }
        // Through the loader, the header's cmdline_size applies.
        let memory = try GuestMemory(size: 64 << 20)
        let image = try loadBzImage(SyntheticImage.bzImage(cmdlineSize: 10))
        XCTAssertThrowsError(try BootLoader.load(.bzImage(image), configuration: configuration(memory, commandLine: "console=ttyS0"),
                                                 into: memory)) { error in
            XCTAssertEqual(error as? BootError, .commandLineTooLong(length: 13, limit: 10))
        }
    }

    func testElfKernelBoot() throws {
        let memory = try GuestMemory(size: 64 << 20)
        let text = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &+ 9) }
        let elf = SyntheticImage.elf64(entry: 0x100_0000, segments: [
            .init(virtualAddress: 0xFFFF_FFFF_8100_0000, physicalAddress: 0x100_0000, contents: text, memorySize: 0x2000),
        ])
        // Dirty the bss range first: the loader must zero it.
        try memory.writeBytes(physical: 0x100_0000 + 3000, [UInt8](repeating: 0xAA, count: 0x2000 - 3000))
        guard case let .elf(kernel) = try loadKernel(elf) else { return XCTFail("not ELF") }
        let plan = try BootLoader.load(.elf(kernel), configuration: configuration(memory, initrd: [7]), into: memory)
        XCTAssertEqual(plan.registers.rip, 0x100_0000)
        XCTAssertEqual(plan.loadAddress, 0x100_0000)
        XCTAssertEqual(plan.kernelEnd, 0x100_2000)
        XCTAssertEqual(try memory.readBytes(physical: 0x100_0000, count: 3000), text)
        XCTAssertEqual(try memory.readBytes(physical: 0x100_0000 + 3000, count: 0x2000 - 3000),
                       [UInt8](repeating: 0, count: 0x2000 - 3000))
        let zp = Layout.bootParamsAddress
        XCTAssertEqual(try memory.readInteger(physical: zp + 0x1FE, as: UInt16.self), 0xAA55)
        XCTAssertEqual(try memory.readBytes(physical: zp + 0x202, count: 4), Array("HdrS".utf8))
        XCTAssertEqual(try memory.readInteger(physical: zp + 0x228, as: UInt32.self), UInt32(Layout.commandLineAddress))
        XCTAssertEqual(try memory.readInteger(physical: zp + 0x21C, as: UInt32.self), 1)
    }

    func testMPTableCPUCountErrorSurfaces() throws {
        let memory = try GuestMemory(size: 64 << 20)
        let image = try loadBzImage(SyntheticImage.bzImage())
        XCTAssertThrowsError(try BootLoader.load(.bzImage(image), configuration: configuration(memory, cpus: 1000), into: memory))
    }
}
