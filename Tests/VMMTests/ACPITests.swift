import VMM
import XCTest

/// The ACPI tables as a guest's ACPI code reads them: found from the RSDP,
/// every checksum right, every pointer inside the tables, `\_S5` present; and
/// the PM1 registers that power the machine off.
final class ACPITablesTests: XCTestCase {
    let base = Layout.acpiTablesAddress
    var tables: [UInt8] = []

    override func setUpWithError() throws {
        tables = try ACPITables.build(base: base, cpuCount: 3, eventBlock: 0x600, controlBlock: 0x604)
    }

    private func u32(_ offset: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(tables[offset + $1]) << (8 * $1) } }
    private func u64(_ offset: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(tables[offset + $1]) << (8 * $1) } }
    private func offset(of address: UInt64, _ what: String) throws -> Int {
        guard address >= base, address < base + UInt64(tables.count) else {
            struct OutOfTables: Error { let what: String }
            throw OutOfTables(what: "\(what) at 0x\(String(address, radix: 16)) lies outside the tables")
        }
        return Int(address - base)
    }
    private func sum(_ range: Range<Int>) -> UInt8 { tables[range].reduce(0, &+) }
    private func signature(at offset: Int) -> String { String(decoding: tables[offset..<(offset + 4)], as: UTF8.self) }

    /// Follows RSDP → XSDT → FADT the way Linux does; returns the FADT's offset.
    private func fadt() throws -> Int {
        XCTAssertEqual(String(decoding: tables[0..<8], as: UTF8.self), "RSD PTR ")
        XCTAssertEqual(sum(0..<20), 0, "ACPI 1.0 RSDP checksum")
        XCTAssertEqual(sum(0..<36), 0, "extended RSDP checksum")
        XCTAssertEqual(tables[15], 2, "revision 2: the XSDT address is valid")
        let xsdt = try offset(of: u64(24), "XSDT")
        XCTAssertEqual(signature(at: xsdt), "XSDT")
        let xsdtLength = Int(u32(xsdt + 4))
        XCTAssertEqual(sum(xsdt..<(xsdt + xsdtLength)), 0, "XSDT checksum")
        XCTAssertEqual(xsdtLength, 36 + 2 * 8, "two entries")
        let fadt = try offset(of: u64(xsdt + 36), "FADT")
        XCTAssertEqual(signature(at: fadt), "FACP")
        let fadtLength = Int(u32(fadt + 4))
        XCTAssertEqual(fadtLength, 276)
        XCTAssertEqual(sum(fadt..<(fadt + fadtLength)), 0, "FADT checksum")
        return fadt
    }

    func testTablesChainFromTheRootPointerWithValidChecksums() throws {
        let fadt = try fadt()
        let dsdt = try offset(of: UInt64(u32(fadt + 40)), "DSDT")
        XCTAssertEqual(signature(at: dsdt), "DSDT")
        XCTAssertEqual(sum(dsdt..<(dsdt + Int(u32(dsdt + 4)))), 0, "DSDT checksum")
        let facs = try offset(of: UInt64(u32(fadt + 36)), "FACS")
        XCTAssertEqual(signature(at: facs), "FACS")
        XCTAssertEqual(u32(facs + 4), 64)
        XCTAssertEqual((base + UInt64(facs)) % 64, 0, "the FACS must be 64-byte aligned")
        XCTAssertLessThanOrEqual(ACPITables.size(cpuCount: MPTable.maxCPUCount), 0x2_0000,
                                 "the tables fit in the BIOS area below 1 MiB for the most CPUs")
    }

    func testMADTListsEveryCPUAndTheIOAPICAsTheMPTableDoes() throws {
        _ = try fadt()
        let xsdt = try offset(of: u64(24), "XSDT")
        let madt = try offset(of: u64(xsdt + 44), "MADT")
        XCTAssertEqual(signature(at: madt), "APIC")
        let length = Int(u32(madt + 4))
        XCTAssertEqual(sum(madt..<(madt + length)), 0, "MADT checksum")
        XCTAssertEqual(u32(madt + 36), UInt32(Layout.localAPICAddress))
        XCTAssertEqual(u32(madt + 40) & 1, 1, "PCAT_COMPAT: the 8259s exist")
        var entries: [(type: UInt8, bytes: [UInt8])] = []
        var cursor = madt + 44
        while cursor < madt + length {
            let size = Int(tables[cursor + 1])
            XCTAssertGreaterThan(size, 1)
            entries.append((tables[cursor], Array(tables[cursor..<(cursor + size)])))
            cursor += max(size, 2)
        }
        XCTAssertEqual(cursor, madt + length, "entries fill the table exactly")
        let cpus = entries.filter { $0.type == 0 }
        XCTAssertEqual(cpus.map { $0.bytes[3] }, [0, 1, 2], "APIC ids 0..<3")
        XCTAssertTrue(cpus.allSatisfy { $0.bytes[4] & 1 == 1 }, "enabled")
        let ioAPICs = entries.filter { $0.type == 1 }
        XCTAssertEqual(ioAPICs.count, 1)
        XCTAssertEqual(ioAPICs.first?.bytes[2], 3, "the IOAPIC's id follows the CPUs'")
        XCTAssertEqual(Array(ioAPICs.first?.bytes[4..<8] ?? []), [0x00, 0x00, 0xC0, 0xFE], "at 0xFEC00000")
        XCTAssertEqual(entries.filter { $0.type == 2 }.count, 0, "no interrupt source overrides: ISA IRQ n is GSI n")
        XCTAssertEqual(entries.filter { $0.type == 4 }.map { $0.bytes[5] }, [1], "NMI on LINT1")
    }

    func testTooManyCPUsAreRefused() {
        XCTAssertThrowsError(try ACPITables.build(base: base, cpuCount: MPTable.maxCPUCount + 1, eventBlock: 0x600, controlBlock: 0x604))
    }

    func testFADTPointsAtThePowerManagementPortsAndIsNotHardwareReduced() throws {
        let fadt = try fadt()
        XCTAssertEqual(u32(fadt + 48), 0, "no SMI_CMD: always in ACPI mode")
        XCTAssertEqual(u32(fadt + 56), 0x600, "PM1a_EVT_BLK")
        XCTAssertEqual(u32(fadt + 64), 0x604, "PM1a_CNT_BLK")
        XCTAssertEqual(tables[fadt + 88], 4, "PM1_EVT_LEN")
        XCTAssertEqual(tables[fadt + 89], 2, "PM1_CNT_LEN")
        XCTAssertEqual(u32(fadt + 112) & (1 << 20), 0, "not HW_REDUCED_ACPI: the PIC and PIT stay")
    }

    func testDSDTDeclaresSoftOffWithTheSleepTypeThePortExpects() throws {
        let fadt = try fadt()
        let dsdt = try offset(of: UInt64(u32(fadt + 40)), "DSDT")
        let aml = Array(tables[(dsdt + 36)..<(dsdt + Int(u32(dsdt + 4)))])
        let s5 = ACPITables.softOffSleepType
        // NameOp "_S5_" PackageOp PkgLength NumElements=4 Byte(5) Byte(5) Zero Zero
        XCTAssertEqual(aml, [0x08] + Array("_S5_".utf8) + [0x12, 0x08, 0x04, 0x0A, s5, 0x0A, s5, 0x00, 0x00])
    }

    func testMisplacedTablesAreRefused() {
        XCTAssertThrowsError(try ACPITables.build(base: 0xE_0008, cpuCount: 1, eventBlock: 0x600, controlBlock: 0x604))
        XCTAssertThrowsError(try ACPITables.build(base: 0x1_0000_0000, cpuCount: 1, eventBlock: 0x600, controlBlock: 0x604))
    }
}

final class ACPIPowerManagementTests: XCTestCase {
    private final class Flag: @unchecked Sendable { var count = 0 }

    private func write(_ device: ACPIPowerManagement, port: UInt16, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { device.write(port: port, offset: 0, data: $0) }
    }
    private func read(_ device: ACPIPowerManagement, port: UInt16, size: Int) -> [UInt8] {
        var data = [UInt8](repeating: 0xAA, count: size)
        data.withUnsafeMutableBytes { device.read(port: port, offset: 0, into: $0) }
        return data
    }

    func testSoftOffPowersOffAndNothingElseDoes() {
        let powerOffs = Flag()
        let device = ACPIPowerManagement(eventBlock: 0x600, controlBlock: 0x604) { powerOffs.count += 1 }
        let s5 = UInt16(ACPITables.softOffSleepType) << 10
        write(device, port: 0x604, [UInt8(s5 & 0xFF), UInt8(s5 >> 8)])
        XCTAssertEqual(powerOffs.count, 0, "SLP_TYP without SLP_EN only prepares")
        let otherState = UInt16(3) << 10 | 1 << 13
        write(device, port: 0x604, [UInt8(otherState & 0xFF), UInt8(otherState >> 8)])
        XCTAssertEqual(powerOffs.count, 0, "another sleep state is not a power-off")
        let enter = s5 | 1 << 13
        write(device, port: 0x604, [UInt8(enter & 0xFF), UInt8(enter >> 8)])
        XCTAssertEqual(powerOffs.count, 1)
        XCTAssertEqual(read(device, port: 0x605, size: 1)[0] & 0x20, 0, "SLP_EN reads as 0")
    }

    func testByteWiseControlWriteAlsoPowersOff() {
        let powerOffs = Flag()
        let device = ACPIPowerManagement(eventBlock: 0x600, controlBlock: 0x604) { powerOffs.count += 1 }
        let enter = UInt16(ACPITables.softOffSleepType) << 10 | 1 << 13
        write(device, port: 0x604, [UInt8(enter & 0xFF)])
        write(device, port: 0x605, [UInt8(enter >> 8)])
        XCTAssertEqual(powerOffs.count, 1)
    }

    func testRegistersReadBackAndSCIStaysEnabled() {
        let device = ACPIPowerManagement(eventBlock: 0x600, controlBlock: 0x604) {}
        XCTAssertEqual(read(device, port: 0x604, size: 2), [0x01, 0x00], "SCI_EN: always in ACPI mode")
        write(device, port: 0x602, [0x21, 0x01])
        XCTAssertEqual(read(device, port: 0x602, size: 2), [0x21, 0x01], "PM1 enable keeps what was written")
        write(device, port: 0x600, [0xFF, 0xFF])
        XCTAssertEqual(read(device, port: 0x600, size: 4), [0, 0, 0, 0], "no status bit is ever set")
        write(device, port: 0x604, [0x00, 0x00])
        XCTAssertEqual(read(device, port: 0x604, size: 2)[0] & 1, 1, "SCI_EN cannot be cleared")
    }
}
