/// The smallest set of ACPI tables that lets a stock Linux kernel power the
/// machine off: RSDP → XSDT → FADT (→ FACS, DSDT with `\_S5`) and MADT.
///
/// Linux powers off only through ACPI sleep state S5: it evaluates `\_S5` for
/// the SLP_TYP value and writes `SLP_TYP | SLP_EN` to the PM1a control block,
/// a port swvmm handles (`ACPIPowerManagement`). Once it has ACPI tables,
/// Linux takes its CPUs and IOAPIC from the MADT alone ("No APIC-table,
/// disabling MPS" otherwise), so the MADT says what the MP table says (which
/// stays, for kernels built without ACPI). The FADT is not
/// "hardware-reduced": the legacy PIC and PIT stay in use as without ACPI.
///
/// Section numbers refer to the ACPI Specification 6.4 (UEFI Forum).
public enum ACPITables {
    /// §5.2.5.3: "RSD PTR " at a 16-byte boundary; revision 2 carries the XSDT address.
    static let rsdpSignature = Array("RSD PTR ".utf8)
    static let rsdpRevision: UInt8 = 2
    static let rsdpSize = 36
    /// Bytes the ACPI 1.0 checksum of the RSDP covers.
    static let rsdpVersion1Size = 20
    /// §5.2.6: the header every system description table starts with.
    static let headerSize = 36
    static let oemID = Array("SWVMM ".utf8)               // 6 bytes
    static let oemTableID = Array("SWVMMKVM".utf8)        // 8 bytes
    static let creatorID = Array("SWVM".utf8)             // 4 bytes
    static let oemRevision: UInt32 = 1
    static let creatorRevision: UInt32 = 1

    /// §5.2.9: FADT revision 6 (ACPI 6.0 and later), 276 bytes.
    static let fadtRevision: UInt8 = 6
    static let fadtSize = 276
    /// §5.2.10: the FACS, 64 bytes, version 2, 64-byte aligned.
    static let facsSize = 64
    static let facsVersion: UInt8 = 2
    /// §5.2.11.1: DSDT revision 2: integers are 64 bits wide.
    static let dsdtRevision: UInt8 = 2
    static let xsdtRevision: UInt8 = 1
    /// §5.2.12: MADT revision 5 (ACPI 6.x).
    static let madtRevision: UInt8 = 5
    /// §5.2.12 Table 5.19 MADT flags: PCAT_COMPAT, the machine also has dual 8259 PICs.
    static let madtPCATCompatible: UInt32 = 1 << 0
    /// §5.2.12 Table 5.21 structure types and lengths.
    static let localAPICType: UInt8 = 0, localAPICLength = 8
    static let ioAPICType: UInt8 = 1, ioAPICLength = 12
    static let localAPICNMIType: UInt8 = 4, localAPICNMILength = 6
    /// Processor Local APIC flags (Table 5.23): Enabled.
    static let localAPICEnabled: UInt32 = 1 << 0
    /// "All processors" in a Local APIC NMI structure (§5.2.12.7).
    static let allProcessors: UInt8 = 0xFF
    /// The local APIC input the NMI arrives at (LINT1, as in the MP table).
    static let nmiInput: UInt8 = 1

    /// The SLP_TYP value `\_S5` announces; `ACPIPowerManagement` powers off when it is written with SLP_EN.
    public static let softOffSleepType: UInt8 = 5
    /// ISA IRQ of the System Control Interrupt (§5.2.9 SCI_INT; 9 as on PCs). swvmm never raises it.
    static let sciInterrupt: UInt16 = 9
    /// §5.2.9 P_LVL2_LAT > 100 and P_LVL3_LAT > 1000: C2 and C3 not supported.
    static let noC2Latency: UInt16 = 101, noC3Latency: UInt16 = 1001
    /// §5.2.9.3 IA-PC boot architecture flags: an 8042 is present (bit 1), VGA is not (bit 2).
    static let bootArchitectureFlags: UInt16 = 1 << 1 | 1 << 2
    /// §5.2.9 Table 5.10 fixed feature flags: WBINVD works (bit 0), C1 is supported
    /// (PROC_C1, bit 2), no fixed power button (PWR_BUTTON, bit 4) or sleep button (bit 5).
    static let fixedFeatureFlags: UInt32 = 1 << 0 | 1 << 2 | 1 << 4 | 1 << 5

    // Table layout, one after the other from the base address (each 16-byte aligned; the FACS 64).
    static let rsdpOffset = 0
    static let facsOffset = 64
    static let xsdtOffset = facsOffset + facsSize
    static let xsdtSize = headerSize + 2 * 8
    static let fadtOffset = xsdtOffset + 64
    static let dsdtOffset = fadtOffset + 288
    static var dsdtSize: Int { headerSize + softOffObject.count }
    static let madtOffset = dsdtOffset + 64
    static func madtSize(cpuCount: Int) -> Int {
        headerSize + 8 + cpuCount * localAPICLength + ioAPICLength + localAPICNMILength
    }
    /// Bytes the tables take from the base address.
    public static func size(cpuCount: Int) -> Int { madtOffset + madtSize(cpuCount: cpuCount) }

    /// `Name (\_S5, Package () { 5, 5, 0, 0 })` in AML (§20.2.5.1 DefName,
    /// §20.2.5.4 DefPackage, §20.2.3 BytePrefix 0x0A and ZeroOp 0x00).
    static var softOffObject: [UInt8] {
        let elements: [UInt8] = [0x0A, softOffSleepType, 0x0A, softOffSleepType, 0x00, 0x00]
        let nameOp: UInt8 = 0x08, packageOp: UInt8 = 0x12
        let body = [UInt8(4)] + elements                  // NumElements, then the elements
        let packageLength = UInt8(1 + body.count)        // a one-byte PkgLength counts itself
        return [nameOp] + Array("_S5_".utf8) + [packageOp, packageLength] + body
    }

    /// The tables, to be placed at guest-physical `base`, for `cpuCount` CPUs
    /// (APIC ids 0..<cpuCount, the IOAPIC's id after them, as in the MP table)
    /// and a PM1a event block at port `eventBlock` (4 bytes) and control block at `controlBlock` (2 bytes).
    public static func build(base: UInt64, cpuCount: Int, eventBlock: UInt16, controlBlock: UInt16) throws -> [UInt8] {
        let size = size(cpuCount: cpuCount)
        guard base % 64 == 0, base + UInt64(size) <= UInt64(UInt32.max) else {
            throw BootError.acpiTablesMisplaced(address: base)
        }
        guard cpuCount >= 1, cpuCount <= MPTable.maxCPUCount else {
            throw BootError.tooManyCPUs(count: cpuCount, maximum: MPTable.maxCPUCount)
        }
        var writer = ByteWriter(count: size)
        let address = { (offset: Int) in base + UInt64(offset) }

        // §5.2.10 FACS: signature, length, version; no waking vector (no S3 on this machine).
        writer.put(bytes: Array("FACS".utf8), at: facsOffset)
        writer.put(UInt32(facsSize), at: facsOffset + 4)
        writer.put(facsVersion, at: facsOffset + 32)

        // §5.2.11.1 DSDT: the header and the one object.
        header(&writer, at: dsdtOffset, signature: "DSDT", length: dsdtSize, revision: dsdtRevision)
        writer.put(bytes: softOffObject, at: dsdtOffset + headerSize)
        checksum(&writer, table: dsdtOffset, length: dsdtSize)

        // §5.2.9 FADT. The 32-bit block addresses only: Linux (ACPICA) builds
        // the 64-bit generic addresses from them when the X_ fields are zero.
        header(&writer, at: fadtOffset, signature: "FACP", length: fadtSize, revision: fadtRevision)
        writer.put(UInt32(address(facsOffset)), at: fadtOffset + 36)      // FIRMWARE_CTRL
        writer.put(UInt32(address(dsdtOffset)), at: fadtOffset + 40)      // DSDT
        writer.put(sciInterrupt, at: fadtOffset + 46)                      // SCI_INT
        // SMI_CMD (offset 48) stays 0: the machine is always in ACPI mode.
        writer.put(UInt32(eventBlock), at: fadtOffset + 56)               // PM1a_EVT_BLK
        writer.put(UInt32(controlBlock), at: fadtOffset + 64)             // PM1a_CNT_BLK
        writer.put(UInt8(ACPIPowerManagement.eventBlockLength), at: fadtOffset + 88)    // PM1_EVT_LEN
        writer.put(UInt8(ACPIPowerManagement.controlBlockLength), at: fadtOffset + 89)  // PM1_CNT_LEN
        writer.put(noC2Latency, at: fadtOffset + 96)                       // P_LVL2_LAT
        writer.put(noC3Latency, at: fadtOffset + 98)                       // P_LVL3_LAT
        writer.put(bootArchitectureFlags, at: fadtOffset + 109)            // IAPC_BOOT_ARCH
        writer.put(fixedFeatureFlags, at: fadtOffset + 112)                // Flags
        checksum(&writer, table: fadtOffset, length: fadtSize)

        // §5.2.12 MADT: a local APIC per CPU, the IOAPIC with GSIs from 0 (ISA IRQ n is GSI n,
        // no overrides: KVM's default routing), and NMI on LINT1 of every CPU.
        let madtSize = madtSize(cpuCount: cpuCount)
        header(&writer, at: madtOffset, signature: "APIC", length: madtSize, revision: madtRevision)
        writer.put(UInt32(Layout.localAPICAddress), at: madtOffset + headerSize)
        writer.put(madtPCATCompatible, at: madtOffset + headerSize + 4)
        var entry = madtOffset + headerSize + 8
        for cpu in 0..<cpuCount {
            writer.put(bytes: [localAPICType, UInt8(localAPICLength), UInt8(cpu), UInt8(cpu)], at: entry)
            writer.put(localAPICEnabled, at: entry + 4)
            entry += localAPICLength
        }
        writer.put(bytes: [ioAPICType, UInt8(ioAPICLength), UInt8(cpuCount), 0], at: entry)
        writer.put(UInt32(Layout.ioAPICAddress), at: entry + 4)
        writer.put(UInt32(0), at: entry + 8)
        entry += ioAPICLength
        writer.put(bytes: [localAPICNMIType, UInt8(localAPICNMILength), allProcessors, 0, 0, nmiInput], at: entry)
        checksum(&writer, table: madtOffset, length: madtSize)

        // §5.2.8 XSDT: the FADT and the MADT.
        header(&writer, at: xsdtOffset, signature: "XSDT", length: xsdtSize, revision: xsdtRevision)
        writer.put(address(fadtOffset), at: xsdtOffset + headerSize)
        writer.put(address(madtOffset), at: xsdtOffset + headerSize + 8)
        checksum(&writer, table: xsdtOffset, length: xsdtSize)

        // §5.2.5.3 RSDP: no RSDT, the XSDT only.
        writer.put(bytes: rsdpSignature, at: rsdpOffset)
        writer.put(bytes: oemID, at: rsdpOffset + 9)
        writer.put(rsdpRevision, at: rsdpOffset + 15)
        writer.put(UInt32(rsdpSize), at: rsdpOffset + 20)
        writer.put(address(xsdtOffset), at: rsdpOffset + 24)
        writer.put(zeroSumChecksum(writer.bytes[rsdpOffset..<(rsdpOffset + rsdpVersion1Size)]), at: rsdpOffset + 8)
        writer.put(zeroSumChecksum(writer.bytes[rsdpOffset..<(rsdpOffset + rsdpSize)]), at: rsdpOffset + 32)
        return writer.bytes
    }

    /// §5.2.6 header, checksum left 0.
    private static func header(_ writer: inout ByteWriter, at offset: Int, signature: String, length: Int, revision: UInt8) {
        writer.put(bytes: Array(signature.utf8), at: offset)
        writer.put(UInt32(length), at: offset + 4)
        writer.put(revision, at: offset + 8)
        writer.put(bytes: oemID, at: offset + 10)
        writer.put(bytes: oemTableID, at: offset + 16)
        writer.put(oemRevision, at: offset + 24)
        writer.put(bytes: creatorID, at: offset + 28)
        writer.put(creatorRevision, at: offset + 32)
    }

    /// §5.2.6: the checksum byte (offset 9) makes the whole table sum to 0.
    private static func checksum(_ writer: inout ByteWriter, table offset: Int, length: Int) {
        writer.put(zeroSumChecksum(writer.bytes[offset..<(offset + length)]), at: offset + 9)
    }
}
