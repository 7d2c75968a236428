import Guest

/// An Intel MultiProcessor Specification 1.4 table: how a guest without ACPI
/// learns its CPUs, its IOAPIC and how ISA interrupts are wired.
///
/// Placed in the first KiB of the EBDA (`Layout.ebdaStart`), one of the areas
/// MP spec §4 says the OS searches for the floating pointer. Section numbers
/// below refer to the MP spec 1.4 (Intel order no. 242016-006).
public enum MPTable {
    // §4.1: MP floating pointer structure.
    static let floatingPointerSize = 16
    static let floatingSignature = Array("_MP_".utf8)
    // §4.2: configuration table header.
    static let headerSize = 44
    static let tableSignature = Array("PCMP".utf8)
    /// Specification revision 1.4 (§4.1 byte 9, §4.2 byte 6).
    static let specRevision: UInt8 = 4
    static let oemID = Array("SWVMM   ".utf8)            // 8 bytes, space-padded
    static let productID = Array("SWVMM KVM   ".utf8)    // 12 bytes

    // §4.3: entry types and sizes.
    static let processorEntryType: UInt8 = 0
    static let processorEntrySize = 20
    static let busEntryType: UInt8 = 1
    static let ioAPICEntryType: UInt8 = 2
    static let ioInterruptEntryType: UInt8 = 3
    static let localInterruptEntryType: UInt8 = 4
    static let smallEntrySize = 8

    /// Local APIC version of an integrated (xAPIC) local APIC, 0x1X (§4.3.1).
    static let localAPICVersion: UInt8 = 0x14
    /// The 82093AA IOAPIC's version register value.
    static let ioAPICVersion: UInt8 = 0x11
    /// Processor entry CPU flags (§4.3.1 Table 4-5): EN and BP.
    static let cpuEnabled: UInt8 = 1 << 0
    static let cpuBootstrap: UInt8 = 1 << 1
    /// CPU signature family 6 (§4.3.1 Table 4-6: stepping 3:0, model 7:4, family 11:8).
    static let cpuSignature: UInt32 = 0x600
    /// Feature flags as CPUID.1:EDX: FPU (bit 0) and on-chip APIC (bit 9).
    static let cpuFeatures: UInt32 = 1 << 0 | 1 << 9
    /// IOAPIC entry flag EN (§4.3.3).
    static let ioAPICEnabled: UInt8 = 1 << 0
    /// Bus id of the single ISA bus.
    static let isaBusID: UInt8 = 0
    static let isaBusType = Array("ISA   ".utf8)            // 6 bytes, space-padded (Table 4-8)
    /// Interrupt types (§4.3.4 Table 4-11).
    static let interruptINT: UInt8 = 0
    static let interruptNMI: UInt8 = 1
    static let interruptExtINT: UInt8 = 3
    /// Polarity and trigger "conform to the bus" (Table 4-10 flags = 0).
    static let conformingFlags: UInt16 = 0
    /// Local interrupt destination "all local APICs" (§4.3.5).
    static let allLocalAPICs: UInt8 = 0xFF
    /// ISA IRQs described.
    static let isaIRQCount: UInt8 = 16
    // ISA IRQ n arrives at IOAPIC pin n, the PIT's IRQ 0 included: that is
    // how KVM's in-kernel IRQ chip routes GSIs 0-15 by default (virt/kvm
    // irq routing, `default_routing`: IOAPIC pin = GSI). Describing IRQ 0 on
    // pin 2, as PC chipsets wire it, makes Linux's check_timer() find no
    // timer on the IOAPIC and fall back to ExtINT through the 8259.

    /// Bytes for `cpuCount` CPUs: floating pointer, header, entries.
    public static func size(cpuCount: Int) -> Int {
        let irqEntries = Int(isaIRQCount)
        return floatingPointerSize + headerSize + cpuCount * processorEntrySize
            + smallEntrySize * (1 /* bus */ + 1 /* IOAPIC */ + irqEntries + 2 /* LINT0, LINT1 */)
    }

    /// The most CPUs that fit in the EBDA area below 0xA0000 (and in 8-bit APIC ids, with the IOAPIC id after them).
    public static var maxCPUCount: Int {
        let space = Int(Layout.conventionalMemoryEnd - Layout.ebdaStart)
        return min(254, (space - size(cpuCount: 0)) / processorEntrySize)
    }

    /// The table for `cpuCount` CPUs (APIC ids 0..<cpuCount, CPU 0 the bootstrap
    /// processor), located at `address`.
    public static func build(cpuCount: Int, address: UInt64 = Layout.ebdaStart) throws -> [UInt8] {
        guard cpuCount >= 1, cpuCount <= maxCPUCount else {
            throw BootError.tooManyCPUs(count: cpuCount, maximum: maxCPUCount)
        }
        var writer = ByteWriter(count: size(cpuCount: cpuCount))
        let tableAddress = address + UInt64(floatingPointerSize)

        // §4.1 floating pointer: signature, table address, length in 16-byte units, revision, checksum.
        writer.put(bytes: floatingSignature, at: 0)
        writer.put(UInt32(tableAddress), at: 4)
        writer.put(UInt8(floatingPointerSize / 16), at: 8)
        writer.put(specRevision, at: 9)
        // Feature bytes 1-5 stay 0: a configuration table is present, no IMCR (virtual-wire mode).

        var offset = floatingPointerSize + headerSize
        var entryCount: UInt16 = 0
        func small(_ bytes: [UInt8]) {
            writer.put(bytes: bytes, at: offset)
            offset += smallEntrySize
            entryCount += 1
        }
        for cpu in 0..<cpuCount {  // §4.3.1
            let flags = cpuEnabled | (cpu == 0 ? cpuBootstrap : 0)
            writer.put(bytes: [processorEntryType, UInt8(cpu), localAPICVersion, flags], at: offset)
            writer.put(cpuSignature, at: offset + 4)
            writer.put(cpuFeatures, at: offset + 8)
            offset += processorEntrySize
            entryCount += 1
        }
        small([busEntryType, isaBusID] + isaBusType)  // §4.3.2
        let ioAPICID = UInt8(cpuCount)
        var ioAPIC = [ioAPICEntryType, ioAPICID, ioAPICVersion, ioAPICEnabled]  // §4.3.3
        ioAPIC += withUnsafeBytes(of: UInt32(Layout.ioAPICAddress).littleEndian, Array.init)
        small(ioAPIC)
        for irq in 0..<isaIRQCount {  // §4.3.4
            small([ioInterruptEntryType, interruptINT, UInt8(conformingFlags & 0xFF), UInt8(conformingFlags >> 8),
                   isaBusID, irq, ioAPICID, irq])
        }
        // §4.3.5: LINT0 receives the 8259's ExtINT, LINT1 NMI, on every local APIC.
        small([localInterruptEntryType, interruptExtINT, 0, 0, isaBusID, 0, allLocalAPICs, 0])
        small([localInterruptEntryType, interruptNMI, 0, 0, isaBusID, 0, allLocalAPICs, 1])

        // §4.2 header.
        let header = floatingPointerSize
        writer.put(bytes: tableSignature, at: header)
        writer.put(UInt16(offset - header), at: header + 4)
        writer.put(specRevision, at: header + 6)
        writer.put(bytes: oemID, at: header + 8)
        writer.put(bytes: productID, at: header + 16)
        writer.put(entryCount, at: header + 34)
        writer.put(UInt32(Layout.localAPICAddress), at: header + 36)
        writer.put(zeroSumChecksum(writer.bytes[header..<offset]), at: header + 7)
        writer.put(zeroSumChecksum(writer.bytes[0..<floatingPointerSize]), at: 10)
        return writer.bytes
    }

    /// Builds and writes the table at `Layout.ebdaStart`.
    public static func write(cpuCount: Int, into memory: PhysicalMemory) throws {
        try memory.writeBytes(physical: Layout.ebdaStart, try build(cpuCount: cpuCount))
    }
}
