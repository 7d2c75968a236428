import Synchronization

/// A 16550A UART (National Semiconductor PC16550D) as a pure state machine.
///
/// Register it on a `PortIOBus` at `SerialCOM1.base` (8 ports) and wire
/// `interruptLine` to IRQ `SerialCOM1.irq`. What the Linux 8250 driver relies on is
/// modelled: DLAB and the divisor latch, the IER read-back probe, FIFO
/// identification (IIR bits 7:6), the IIR priority scheme and its clearing rules,
/// the THRE interrupt on enabling ETBEI, loopback (MCR bit 4), and the scratch register.
///
/// Simplified:
/// - Transmission is instant: THR bytes go to `output` on the write, so LSR always
///   reports THRE|TEMT and there is no TX FIFO or baud-rate timing (the divisor is
///   stored and read back, nothing more).
/// - Host input never has parity, framing or break errors; the only line status
///   error is overrun (LSR.OE) when the receive queue is full.
/// - The receive queue is `inputCapacity` bytes (default 4 KiB) rather than 16 so a
///   paste is not lost while the guest is busy; the FIFO trigger level only chooses
///   between the "data available" and "character timeout" IIR codes, which the
///   timeout reports at once instead of after four character times.
/// - FCR's DMA mode bit is ignored; MCR OUT2 does not gate the interrupt line (on
///   a PC board it does, but Linux always sets OUT2 when it uses the interrupt).
/// - Outside loopback the modem inputs read as "host ready": DCD, DSR, CTS asserted.
///
/// Thread safety: all entry points take an internal lock, because host input
/// arrives on the console thread while vCPU threads access the registers.
/// `output` and `interruptLine` are called with that lock held: they must not
/// call back into this UART.
public final class Serial16550: PortIODevice, ConsoleInputSink, @unchecked Sendable {
    /// Default receive capacity: a few terminal lines of paste (see "Simplified").
    public static let defaultInputCapacity = 4096

    private let output: (UInt8) -> Void
    private let interruptLine: (Bool) -> Void
    private let lock = Mutex(())

    private var interruptEnable: UInt8 = 0
    private var lineControl: UInt8 = 0
    private var modemControl: UInt8 = 0
    private var fifoControl: UInt8 = 0
    private var divisor: UInt16 = SerialReset.divisor
    private var scratch: UInt8 = 0
    /// Sticky LSR error bits, cleared by reading LSR.
    private var lineErrors: UInt8 = 0
    /// MSR bits 3:0, cleared by reading MSR.
    private var modemDeltas: UInt8 = 0
    /// The THRE interrupt condition, independent of IER.ETBEI masking.
    private var transmitterEmptyPending = false
    private var receiveQueue: SerialFIFO
    private var interruptLevel = false
    private var counters = SerialStatistics()

    /// - Parameters:
    ///   - output: receives each byte the guest transmits, in order (e.g. `ConsoleOutput.write(byte:)`).
    ///   - interruptLine: called with the new level whenever the interrupt output changes.
    ///   - inputCapacity: receive queue size in bytes (at least 1).
    public init(output: @escaping (UInt8) -> Void,
                interruptLine: @escaping (Bool) -> Void = { _ in },
                inputCapacity: Int = Serial16550.defaultInputCapacity) {
        self.output = output
        self.interruptLine = interruptLine
        self.receiveQueue = SerialFIFO(capacity: inputCapacity)
    }

    // MARK: Host side

    /// Queues host bytes for the guest; what does not fit is dropped, counted and
    /// reported to the guest as an overrun (LSR.OE).
    public func enqueueInput(_ bytes: [UInt8]) {
        lock.withLock { _ in
            let accepted = acceptInput(bytes[...])
            if accepted < bytes.count {
                counters.droppedBytes &+= UInt64(bytes.count - accepted)
                lineErrors |= SerialLSR.overrunError
            }
            updateInterruptLine()
        }
    }

    /// Queues as many of `bytes` as fit without loss and returns how many; for
    /// producers that can wait (piped stdin).
    public func offerInput(_ bytes: ArraySlice<UInt8>) -> Int {
        lock.withLock { _ in
            let accepted = acceptInput(bytes)
            updateInterruptLine()
            return accepted
        }
    }

    /// Current level of the interrupt output.
    public var interruptAsserted: Bool { lock.withLock { _ in interruptLevel } }

    /// A snapshot of the byte and interrupt counters.
    public func statistics() -> SerialStatistics { lock.withLock { _ in counters } }

    // MARK: Guest side (PortIODevice)

    /// A wider access touches consecutive registers, as an 8-bit ISA device sees it.
    public func read(port: UInt16, offset: UInt16, into data: UnsafeMutableRawBufferPointer) {
        lock.withLock { _ in
            for index in data.indices {
                let (register, wrapped) = offset.addingReportingOverflow(UInt16(truncatingIfNeeded: index))
                data[index] = wrapped || register >= SerialRegister.count ? 0xFF : readRegister(register)
            }
            updateInterruptLine()
        }
    }

    public func write(port: UInt16, offset: UInt16, data: UnsafeRawBufferPointer) {
        lock.withLock { _ in
            for index in data.indices {
                let (register, wrapped) = offset.addingReportingOverflow(UInt16(truncatingIfNeeded: index))
                if !wrapped && register < SerialRegister.count { writeRegister(register, data[index]) }
            }
            updateInterruptLine()
        }
    }

    // MARK: Registers (lock held)

    private var divisorLatchSelected: Bool { lineControl & SerialLCR.divisorLatchAccess != 0 }
    private var fifosEnabled: Bool { fifoControl & SerialFCR.enable != 0 }
    private var loopback: Bool { modemControl & SerialMCR.loop != 0 }

    private func readRegister(_ register: UInt16) -> UInt8 {
        switch register {
        case SerialRegister.data:
            if divisorLatchSelected { return UInt8(truncatingIfNeeded: divisor) }
            guard let byte = receiveQueue.pop() else { return 0 }
            counters.guestReadBytes &+= 1
            return byte
        case SerialRegister.interruptEnable:
            return divisorLatchSelected ? UInt8(truncatingIfNeeded: divisor >> 8) : interruptEnable
        case SerialRegister.interruptIdentification:
            let identification = pendingInterrupt()
            // Reading IIR clears a THRE interrupt only when it is the one reported (Table IV).
            if identification == SerialIIR.transmitterEmpty { transmitterEmptyPending = false }
            return identification | (fifosEnabled ? SerialIIR.fifosEnabled : 0)
        case SerialRegister.lineControl:
            return lineControl
        case SerialRegister.modemControl:
            return modemControl
        case SerialRegister.lineStatus:
            let status = lineErrors | SerialReset.lineStatus
                | (receiveQueue.isEmpty ? 0 : SerialLSR.dataReady)
            lineErrors = 0
            return status
        case SerialRegister.modemStatus:
            let status = modemDeltas | modemInputs()
            modemDeltas = 0
            return status
        default:
            return scratch
        }
    }

    private func writeRegister(_ register: UInt16, _ value: UInt8) {
        switch register {
        case SerialRegister.data:
            if divisorLatchSelected {
                divisor = (divisor & 0xFF00) | UInt16(value)
            } else {
                transmit(value)
            }
        case SerialRegister.interruptEnable:
            if divisorLatchSelected {
                divisor = (divisor & 0x00FF) | UInt16(value) << 8
            } else {
                let enabled = value & SerialIER.writableMask
                // THR is always empty, so enabling ETBEI raises THRE at once (Linux's
                // startup test and tx path wait for exactly this interrupt).
                if enabled & ~interruptEnable & SerialIER.transmitterEmpty != 0 {
                    transmitterEmptyPending = true
                }
                interruptEnable = enabled
            }
        case SerialRegister.interruptIdentification:
            writeFIFOControl(value)
        case SerialRegister.lineControl:
            lineControl = value
        case SerialRegister.modemControl:
            let before = modemInputs()
            modemControl = value & SerialMCR.writableMask
            noteModemInputChange(from: before, to: modemInputs())
        case SerialRegister.scratch:
            scratch = value
        default:
            break // LSR and MSR writes are factory-test only (§8.3, §8.7).
        }
    }

    private func transmit(_ byte: UInt8) {
        if loopback {
            if !receiveQueue.push(byte) { lineErrors |= SerialLSR.overrunError }
        } else {
            counters.transmittedBytes &+= 1
            output(byte)
        }
        // Writing THR clears THRE; the instant transmitter empties it again at once.
        transmitterEmptyPending = true
    }

    private func writeFIFOControl(_ value: UInt8) {
        // Changing the enable bit clears both FIFOs (§8.4, FCR bit 0).
        if (value ^ fifoControl) & SerialFCR.enable != 0 || value & SerialFCR.clearReceiver != 0 {
            receiveQueue.removeAll()
        }
        // The clear bits are self-clearing; keep enable and the trigger level.
        fifoControl = value & ~(SerialFCR.clearReceiver | SerialFCR.clearTransmitter)
    }

    /// The MSR upper nibble: in loopback the MCR outputs (§8.6: DTR->DSR, RTS->CTS,
    /// OUT1->RI, OUT2->DCD), otherwise a ready host.
    private func modemInputs() -> UInt8 {
        guard loopback else { return SerialMSR.hostReady }
        var inputs: UInt8 = 0
        if modemControl & SerialMCR.dtr != 0 { inputs |= SerialMSR.dsr }
        if modemControl & SerialMCR.rts != 0 { inputs |= SerialMSR.cts }
        if modemControl & SerialMCR.out1 != 0 { inputs |= SerialMSR.ri }
        if modemControl & SerialMCR.out2 != 0 { inputs |= SerialMSR.dcd }
        return inputs
    }

    private func noteModemInputChange(from before: UInt8, to after: UInt8) {
        let changed = before ^ after
        if changed & SerialMSR.cts != 0 { modemDeltas |= SerialMSR.deltaCTS }
        if changed & SerialMSR.dsr != 0 { modemDeltas |= SerialMSR.deltaDSR }
        if changed & SerialMSR.dcd != 0 { modemDeltas |= SerialMSR.deltaDCD }
        // TERI: RI bit went from 1 to 0 (the RI pin from low to high; §8.7 bit 2).
        if before & SerialMSR.ri != 0 && after & SerialMSR.ri == 0 { modemDeltas |= SerialMSR.trailingEdgeRI }
    }

    private func acceptInput(_ bytes: ArraySlice<UInt8>) -> Int {
        var accepted = 0
        for byte in bytes {
            guard receiveQueue.push(byte) else { break }
            accepted += 1
        }
        counters.receivedBytes &+= UInt64(accepted)
        return accepted
    }

    // MARK: Interrupts (lock held)

    /// The highest-priority enabled interrupt as an IIR identification code (Table IV).
    private func pendingInterrupt() -> UInt8 {
        if interruptEnable & SerialIER.lineStatus != 0 && lineErrors & SerialLSR.errorBits != 0 {
            return SerialIIR.receiverLineStatus
        }
        if interruptEnable & SerialIER.receivedData != 0 && !receiveQueue.isEmpty {
            let trigger = fifosEnabled ? SerialFCR.triggerLevels[Int(fifoControl >> SerialFCR.triggerShift) & 3] : 1
            return receiveQueue.count >= trigger ? SerialIIR.receivedDataAvailable : SerialIIR.characterTimeout
        }
        if interruptEnable & SerialIER.transmitterEmpty != 0 && transmitterEmptyPending {
            return SerialIIR.transmitterEmpty
        }
        if interruptEnable & SerialIER.modemStatus != 0 && modemDeltas != 0 {
            return SerialIIR.modemStatus
        }
        return SerialIIR.noInterruptPending
    }

    private func updateInterruptLine() {
        let level = pendingInterrupt() != SerialIIR.noInterruptPending
        guard level != interruptLevel else { return }
        interruptLevel = level
        if level { counters.interruptsRaised &+= 1 }
        interruptLine(level)
    }
}
