/// The ACPI PM1a event and control blocks (ACPI 6.4 §4.8.1, §4.8.3): what a
/// guest writes to power the machine off.
///
/// - Event block (4 bytes): PM1 status (2 bytes, write 1 to clear; nothing
///   ever sets a status bit here) and PM1 enable (2 bytes, kept as written).
/// - Control block (2 bytes): kept as written, SCI_EN reads as set (the
///   machine is always in ACPI mode). Writing SLP_EN with SLP_TYP equal to
///   `\_S5`'s value (`ACPITables.softOffSleepType`) is the power-off.
///
/// Register the same instance at `eventBlock` (length 4) and `controlBlock` (length 2).
public final class ACPIPowerManagement: PortIODevice, @unchecked Sendable {
    /// Where swvmm puts the PM1a event block: ports no PC device or in-kernel KVM device uses.
    public static let defaultEventBlock: UInt16 = 0x600
    /// Where swvmm puts the PM1a control block, right after the event block.
    public static let defaultControlBlock: UInt16 = 0x604
    /// PM1_EVT_LEN: status and enable registers, 2 bytes each.
    public static let eventBlockLength = 4
    /// PM1_CNT_LEN.
    public static let controlBlockLength = 2
    /// PM1 control bits (§4.8.3.2.1 Table 4.13): SCI_EN (0), SLP_TYP (12:10), SLP_EN (13).
    static let sciEnabled: UInt16 = 1 << 0
    static let sleepTypeShift: UInt16 = 10
    static let sleepTypeMask: UInt16 = 0x7 << 10
    static let sleepEnable: UInt16 = 1 << 13

    public let eventBlock: UInt16
    public let controlBlock: UInt16
    private let onPowerOff: () -> Void
    private var enable: UInt16 = 0
    private var control: UInt16 = ACPIPowerManagement.sciEnabled

    /// - Parameter onPowerOff: called on the vCPU thread inside the bus's device
    ///   lock when the guest enters S5: only signal the run loop.
    public init(eventBlock: UInt16, controlBlock: UInt16, onPowerOff: @escaping () -> Void) {
        self.eventBlock = eventBlock
        self.controlBlock = controlBlock
        self.onPowerOff = onPowerOff
    }

    public func read(port: UInt16, offset: UInt16, into data: UnsafeMutableRawBufferPointer) {
        let value: UInt16
        switch port {
        case eventBlock, eventBlock + 1: value = 0                         // PM1 status: nothing pending
        case eventBlock + 2, eventBlock + 3: value = enable >> (8 * (port - eventBlock - 2))
        case controlBlock, controlBlock + 1: value = (control | Self.sciEnabled) >> (8 * (port - controlBlock))
        default: value = 0xFFFF
        }
        // A 2-byte read at the low register returns both bytes; wider reads see zeros above.
        for index in data.indices { data[index] = index < 2 ? UInt8(truncatingIfNeeded: value >> (8 * index)) : 0 }
    }

    public func write(port: UInt16, offset: UInt16, data: UnsafeRawBufferPointer) {
        guard !data.isEmpty else { return }
        let low = UInt16(data[0]), high = data.count > 1 ? UInt16(data[1]) : nil
        switch port {
        case eventBlock + 2: enable = high.map { $0 << 8 | low } ?? (enable & 0xFF00 | low)
        case eventBlock + 3: enable = enable & 0x00FF | low << 8
        case controlBlock: setControl(high.map { $0 << 8 | low } ?? (control & 0xFF00 | low))
        case controlBlock + 1: setControl(control & 0x00FF | low << 8)
        default: break                                                      // status: write-1-to-clear of nothing
        }
    }

    private func setControl(_ value: UInt16) {
        let sleepType = (value & Self.sleepTypeMask) >> Self.sleepTypeShift
        if value & Self.sleepEnable != 0, sleepType == UInt16(ACPITables.softOffSleepType) {
            onPowerOff()
        }
        control = value & ~Self.sleepEnable   // SLP_EN is write-only and reads as 0
    }
}
