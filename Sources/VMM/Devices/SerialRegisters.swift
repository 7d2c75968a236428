/// Register offsets and bits of the National Semiconductor PC16550D UART
/// (datasheet, June 1995: Table II "Summary of Registers" and §8 "Registers").
/// Offsets are relative to the port base; DLAB is LCR bit 7.
enum SerialRegister {
    /// RBR (read) / THR (write) with DLAB=0; DLL (divisor latch LSB) with DLAB=1.
    static let data: UInt16 = 0
    /// IER with DLAB=0; DLM (divisor latch MSB) with DLAB=1.
    static let interruptEnable: UInt16 = 1
    /// IIR (read) / FCR (write); not affected by DLAB.
    static let interruptIdentification: UInt16 = 2
    /// LCR: word length, stop bits, parity, break, DLAB.
    static let lineControl: UInt16 = 3
    /// MCR: DTR, RTS, OUT1, OUT2, LOOP.
    static let modemControl: UInt16 = 4
    /// LSR: receiver and transmitter status.
    static let lineStatus: UInt16 = 5
    /// MSR: modem inputs and their change bits.
    static let modemStatus: UInt16 = 6
    /// SCR: scratch register, no effect on the UART.
    static let scratch: UInt16 = 7
    /// Eight consecutive ports.
    static let count: UInt16 = 8
}

/// IER bits (Table II, IER; §8.5).
enum SerialIER {
    /// ERBFI: received data available (and character timeout in FIFO mode).
    static let receivedData: UInt8 = 0x01
    /// ETBEI: transmitter holding register empty.
    static let transmitterEmpty: UInt8 = 0x02
    /// ELSI: receiver line status (overrun, parity, framing, break).
    static let lineStatus: UInt8 = 0x04
    /// EDSSI: modem status (any MSR delta bit).
    static let modemStatus: UInt8 = 0x08
    /// Bits 4-7 are always 0 on the 16550 (Linux's probe writes 0x0F and checks the read-back).
    static let writableMask: UInt8 = 0x0F
}

/// IIR values (Table IV "Interrupt Control Functions").
enum SerialIIR {
    /// Bit 0 set: no interrupt pending.
    static let noInterruptPending: UInt8 = 0x01
    /// Priority 1: overrun, parity, framing error or break. Cleared by reading LSR.
    static let receiverLineStatus: UInt8 = 0x06
    /// Priority 2: received data at or above the FIFO trigger level. Cleared by reading RBR below it.
    static let receivedDataAvailable: UInt8 = 0x04
    /// Priority 2 (FIFO mode): data in the RX FIFO below the trigger level and idle. Cleared by reading RBR.
    static let characterTimeout: UInt8 = 0x0C
    /// Priority 3: THR empty. Cleared by reading IIR (when it is the source) or writing THR.
    static let transmitterEmpty: UInt8 = 0x02
    /// Priority 4: CTS, DSR, RI or DCD changed. Cleared by reading MSR.
    static let modemStatus: UInt8 = 0x00
    /// Bits 6-7 are set when FCR bit 0 enables the FIFOs.
    static let fifosEnabled: UInt8 = 0xC0
}

/// FCR bits (§8.4).
enum SerialFCR {
    /// Enables both FIFOs; changing it clears both.
    static let enable: UInt8 = 0x01
    /// Clears the RX FIFO (self-clearing).
    static let clearReceiver: UInt8 = 0x02
    /// Clears the TX FIFO (self-clearing).
    static let clearTransmitter: UInt8 = 0x04
    /// Bits 6-7 select the RX trigger level.
    static let triggerShift: UInt8 = 6
    /// RX trigger levels for FCR bits 7:6 = 00, 01, 10, 11.
    static let triggerLevels: [Int] = [1, 4, 8, 14]
}

/// LCR bits (§8.1).
enum SerialLCR {
    /// DLAB: offsets 0 and 1 address the divisor latch.
    static let divisorLatchAccess: UInt8 = 0x80
}

/// MCR bits (§8.6).
enum SerialMCR {
    static let dtr: UInt8 = 0x01
    static let rts: UInt8 = 0x02
    static let out1: UInt8 = 0x04
    static let out2: UInt8 = 0x08
    /// Local loopback: TX loops into RX, the MCR outputs drive the MSR inputs.
    static let loop: UInt8 = 0x10
    /// Bits 5-7 are always 0 on the 16550.
    static let writableMask: UInt8 = 0x1F
}

/// LSR bits (§8.3).
enum SerialLSR {
    /// DR: at least one byte in RBR / the RX FIFO.
    static let dataReady: UInt8 = 0x01
    /// OE: a byte arrived with no room for it.
    static let overrunError: UInt8 = 0x02
    static let parityError: UInt8 = 0x04
    static let framingError: UInt8 = 0x08
    static let breakInterrupt: UInt8 = 0x10
    /// THRE: THR (or the TX FIFO) is empty.
    static let transmitterHoldingEmpty: UInt8 = 0x20
    /// TEMT: THR and the transmit shift register are both empty.
    static let transmitterEmpty: UInt8 = 0x40
    /// Bits that raise a receiver line status interrupt and are cleared by reading LSR.
    static let errorBits: UInt8 = overrunError | parityError | framingError | breakInterrupt
}

/// MSR bits (§8.7).
enum SerialMSR {
    /// DCTS, DDSR, TERI, DDCD: change indicators, cleared by reading MSR.
    static let deltaCTS: UInt8 = 0x01
    static let deltaDSR: UInt8 = 0x02
    static let trailingEdgeRI: UInt8 = 0x04
    static let deltaDCD: UInt8 = 0x08
    static let deltaBits: UInt8 = 0x0F
    /// CTS, DSR, RI, DCD: the (complemented) modem inputs.
    static let cts: UInt8 = 0x10
    static let dsr: UInt8 = 0x20
    static let ri: UInt8 = 0x40
    static let dcd: UInt8 = 0x80
    /// What a connected, ready host presents outside loopback: DCD, DSR and CTS
    /// asserted, no ring. (A console has no modem; "always ready" keeps any
    /// flow-control check in the guest from stalling.)
    static let hostReady: UInt8 = dcd | dsr | cts
}

/// Reset values (Table III "UART Reset Configuration").
enum SerialReset {
    /// LSR after reset: THRE and TEMT set.
    static let lineStatus: UInt8 = SerialLSR.transmitterHoldingEmpty | SerialLSR.transmitterEmpty
    /// The divisor is not reset by the chip; 12 is 9600 baud with the PC's 1.8432 MHz clock, what PC firmware leaves.
    static let divisor: UInt16 = 12
}

/// The standard PC location of COM1 (IBM PC/AT Technical Reference: 0x3F8-0x3FF, IRQ 4).
public enum SerialCOM1 {
    /// First port of COM1.
    public static let base: UInt16 = 0x3F8
    /// Number of ports the UART decodes.
    public static let length: UInt16 = SerialRegister.count
    /// ISA interrupt line of COM1.
    public static let irq: UInt32 = 4
}
