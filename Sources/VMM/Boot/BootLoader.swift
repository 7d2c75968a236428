import Guest

/// What the guest is booted with.
public struct BootConfiguration: Sendable {
    /// Guest RAM, ascending; the first region starts at 0 (`GuestMemory.regions`).
    public var memoryRegions: [MemoryRegion]
    /// vCPUs described in the MP table.
    public var cpuCount: Int
    /// The kernel command line.
    public var commandLine: String
    /// The initial RAM disk, if any (`ImageContents(file:)` to load it from its file).
    public var initrd: ImageContents?

    public init(memoryRegions: [MemoryRegion], cpuCount: Int, commandLine: String, initrd: ImageContents? = nil) {
        self.memoryRegions = memoryRegions
        self.cpuCount = cpuCount
        self.commandLine = commandLine
        self.initrd = initrd
    }
}

/// Where things were put and how to start the bootstrap vCPU. The entry
/// point, zero page, page tables, GDT and segments are where the vCPU
/// state says: `registers` (rip, rsi) and `specialRegisters` (cr3, gdt, cs, ds).
public struct BootPlan: Sendable {
    /// Guest-physical range of the initrd.
    public struct Placement: Sendable, Equatable {
        public let address: UInt64
        public let size: UInt64
    }

    /// Where the (protected-mode) kernel was copied.
    public let loadAddress: UInt64
    /// End of the kernel's working area (load address + init_size, or vmlinux's end).
    public let kernelEnd: UInt64
    /// The initrd, if one was loaded.
    public let initrd: Placement?
    /// General-purpose registers of the bootstrap vCPU: rip is the 64-bit
    /// entry (bzImage load address + 0x200, or the vmlinux ELF entry), rsi the zero page.
    public let registers: BootRegisters
    /// Special registers of the bootstrap vCPU: cr3 is the PML4, cs/ds are
    /// __BOOT_CS/__BOOT_DS.
    public let specialRegisters: BootSpecialRegisters
    /// MSRs to set on every vCPU.
    public let msrs: [(index: UInt32, value: UInt64)]
}

/// Lays out a Linux boot in guest memory (boot.rst, "64-bit Boot Protocol").
public enum BootLoader {
    /// Chunk for zero-filling .bss, so a large bss does not need one large buffer.
    static let zeroChunk = 1 << 20
    /// Highest initrd address for a vmlinux, which has no `initrd_addr_max`:
    /// what x86-64 kernels declare in their header (0x7FFFFFFF).
    static let elfInitrdAddrMax: UInt64 = 0x7FFF_FFFF

    /// Copies the kernel, initrd, command line, zero page, GDT, page tables and
    /// MP table into `memory` and returns the plan for the vCPUs.
    public static func load(_ image: KernelImage, configuration: BootConfiguration,
                            into memory: PhysicalMemory) throws -> BootPlan {
        let e820 = try E820Map.build(memoryRegions: configuration.memoryRegions)
        let lowEnd = configuration.memoryRegions[0].end  // build() checked there is a first region at 0

        var params: BootParams
        let commandLine = try KernelCommandLine(configuration.commandLine, kernelLimit: image.commandLineLimit)
        let loadAddress: UInt64, kernelEnd: UInt64, entryPoint: UInt64, initrdAddrMax: UInt64
        switch image {
        case let .bzImage(bz):
            let header = bz.header
            loadAddress = bzImageLoadAddress(header)
            // A non-relocatable kernel runs at pref_address whatever its load address.
            let runStart = header.relocatableKernel ? loadAddress : max(loadAddress, header.prefAddress)
            kernelEnd = max(try BootError.checkedSum(runStart, UInt64(header.initSize), fields: "pref_address + init_size"),
                            try BootError.checkedSum(loadAddress, UInt64(header.protectedModeSize),
                                                     fields: "load address + syssize * 16"))
            guard kernelEnd <= lowEnd else {
                throw BootError.kernelDoesNotFit(loadAddress: loadAddress, size: kernelEnd - loadAddress, memoryEnd: lowEnd)
            }
            try guarded("the kernel") { try bz.protectedModeKernel.copy(into: memory, at: loadAddress, what: "protected-mode kernel") }
            entryPoint = loadAddress + BzImage.entry64Offset
            initrdAddrMax = UInt64(header.initrdAddrMax)
            params = BootParams(setupHeader: bz.setupHeaderBytes)
        case let .elf(elf):
            loadAddress = elf.lowestAddress
            kernelEnd = elf.end
            guard loadAddress >= Layout.highMemoryStart else { throw BootError.kernelBelowHighMemory(loadAddress: loadAddress) }
            guard kernelEnd <= lowEnd else {
                throw BootError.kernelDoesNotFit(loadAddress: loadAddress, size: kernelEnd - loadAddress, memoryEnd: lowEnd)
            }
            try loadSegments(elf, into: memory)
            entryPoint = elf.entryPoint
            initrdAddrMax = elfInitrdAddrMax
            params = BootParams()
        }

        var initrd: BootPlan.Placement?
        if let contents = configuration.initrd, contents.count > 0 {
            let placement = try placeInitrd(size: UInt64(contents.count), below: min(lowEnd, initrdAddrMax + 1),
                                            above: kernelEnd)
            try guarded("the initrd") { try contents.copy(into: memory, at: placement.address, what: "initrd") }
            params.setRamdisk(address: placement.address, size: placement.size)
            initrd = placement
        }

        try guarded("the command line") { try memory.writeBytes(physical: Layout.commandLineAddress, commandLine.bytes) }
        params.setCommandLine(address: Layout.commandLineAddress)
        try params.setE820(e820)
        let acpi = try ACPITables.build(base: Layout.acpiTablesAddress, cpuCount: configuration.cpuCount,
                                        eventBlock: ACPIPowerManagement.defaultEventBlock,
                                        controlBlock: ACPIPowerManagement.defaultControlBlock)
        try guarded("the ACPI tables") { try memory.writeBytes(physical: Layout.acpiTablesAddress, acpi) }
        params.setACPIRootPointer(address: Layout.acpiTablesAddress + UInt64(ACPITables.rsdpOffset))
        try guarded("the zero page") { try memory.writeBytes(physical: Layout.bootParamsAddress, params.bytes) }
        try guarded("the GDT") { try GDT.write(into: memory) }
        let root = try guarded("the page tables") { try PageTables.write(into: memory) }
        let mpTable = try MPTable.build(cpuCount: configuration.cpuCount)
        try guarded("the MP table") { try memory.writeBytes(physical: Layout.ebdaStart, mpTable) }

        let sregs = BootSpecialRegisters(pageTableRoot: root)
        return BootPlan(loadAddress: loadAddress, kernelEnd: kernelEnd, initrd: initrd,
                        registers: BootRegisters(entryPoint: entryPoint, bootParams: Layout.bootParamsAddress),
                        specialRegisters: sregs, msrs: BootMSRs.entries)
    }

    /// `pref_address` for a relocatable kernel whose preferred address is
    /// suitably aligned and above 1 MiB, else 1 MiB (boot.rst: relocatable
    /// kernels may load at any `kernel_alignment`-aligned address; others at 0x100000).
    static func bzImageLoadAddress(_ header: SetupHeader) -> UInt64 {
        let alignment = UInt64(header.kernelAlignment)
        if header.relocatableKernel, header.prefAddress >= Layout.highMemoryStart,
           alignment != 0, header.prefAddress % alignment == 0 {
            return header.prefAddress
        }
        return Layout.highMemoryStart
    }

    /// The highest page-aligned spot for `size` bytes ending at or below
    /// `limit`, not below `floor` (the kernel's working area, which the
    /// decompressor overwrites).
    static func placeInitrd(size: UInt64, below limit: UInt64, above floor: UInt64) throws -> BootPlan.Placement {
        guard size <= limit else { throw BootError.initrdDoesNotFit(size: size, limit: limit, kernelEnd: floor) }
        let address = (limit - size) & ~(Layout.pageSize - 1)
        guard address >= floor else { throw BootError.initrdDoesNotFit(size: size, limit: limit, kernelEnd: floor) }
        return BootPlan.Placement(address: address, size: size)
    }

    /// Copies each PT_LOAD segment to its physical address and zeroes its bss.
    static func loadSegments(_ elf: ElfKernel, into memory: PhysicalMemory) throws {
        let zeros = [UInt8](repeating: 0, count: zeroChunk)
        for segment in elf.segments {
            try guarded("an ELF segment") {
                try segment.contents.copy(into: memory, at: segment.physicalAddress, what: "ELF PT_LOAD segment")
                // ElfKernel checked p_filesz <= p_memsz and that p_paddr + p_memsz fits in 64 bits.
                var address = segment.physicalAddress + UInt64(segment.contents.count)
                let end = segment.physicalAddress + segment.memorySize
                while address < end {
                    let count = Int(min(UInt64(zeroChunk), end - address))
                    try memory.writeBytes(physical: address, zeros.prefix(count))
                    address += UInt64(count)
                }
            }
        }
    }

    /// Runs `body`, naming what was being written if guest memory refuses it.
    static func guarded<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as PhysicalMemoryError {
            throw BootError.guestMemory(what: what, error)
        }
    }
}
