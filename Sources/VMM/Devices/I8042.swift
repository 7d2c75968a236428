/// A minimal 8042 keyboard controller at ports 0x60 and 0x64: enough for Linux's
/// i8042 driver to find a controller with a keyboard port and no AUX port without
/// waiting out timeouts, and the reset line that `reboot=k` pulses.
///
/// Register the same instance at `I8042Port.data` and `I8042Port.command` (length 1
/// each; the bus then shares one lock between them).
///
/// Simplified:
/// - There is no AUX (mouse) port. The AUX loopback command (0xD3) returns its byte
///   without the AUX flag and the AUX interface test reports "clock stuck low", which
///   Linux's i8042_check_aux reads as "no AUX port" at once.
/// - The keyboard acknowledges every byte (0xFA), answers identify (0xF2) and reset
///   (0xFF), and never produces key presses. Its replies raise `keyboardInterrupt`
///   (IRQ 1) when the controller's keyboard-interrupt bit is set; if the callback is
///   not wired, the guest's keyboard probe times out in the background (harmless).
/// - Writing the output port (0xD1) is stored, never resets the CPU; only the
///   pulse commands (0xF0-0xFE with bit 0 clear) do.
public final class I8042: PortIODevice, @unchecked Sendable {
    /// How many reply bytes are kept (a keyboard reply is at most 3 bytes; more means a runaway guest).
    private static let outputCapacity = 16

    private let onReset: () -> Void
    private let keyboardInterrupt: (Bool) -> Void
    private var control = I8042Control.firmwareDefault
    private var outputPort = I8042Reply.outputPortDefault
    private var lastWriteWasCommand = false
    /// A command waiting for its parameter on the data port.
    private var pendingCommand: UInt8?
    /// Bytes for port 0x60, oldest first; `true` marks AUX data.
    private var output: [(byte: UInt8, auxiliary: Bool)] = []
    private var interruptLevel = false
    private var resets: UInt64 = 0

    /// - Parameters:
    ///   - onReset: called when the guest pulses the CPU reset line (0xFE on port 0x64).
    ///     Called on the vCPU thread inside the bus's device lock: only signal the run loop.
    ///   - keyboardInterrupt: IRQ 1 level changes.
    public init(onReset: @escaping () -> Void, keyboardInterrupt: @escaping (Bool) -> Void = { _ in }) {
        self.onReset = onReset
        self.keyboardInterrupt = keyboardInterrupt
    }

    /// Times the guest asked for a CPU reset.
    public var resetRequests: UInt64 { resets }

    public func read(port: UInt16, offset: UInt16, into data: UnsafeMutableRawBufferPointer) {
        guard !data.isEmpty else { return }
        // Only the first byte is meaningful; the 8042 is an 8-bit device.
        for index in data.indices { data[index] = 0xFF }
        switch port {
        case I8042Port.command:
            data[0] = status()
        case I8042Port.data:
            data[0] = output.isEmpty ? 0 : output.removeFirst().byte
            updateInterrupt()
        default:
            break
        }
    }

    public func write(port: UInt16, offset: UInt16, data: UnsafeRawBufferPointer) {
        guard let value = data.first else { return }
        switch port {
        case I8042Port.command:
            lastWriteWasCommand = true
            runCommand(value)
        case I8042Port.data:
            lastWriteWasCommand = false
            writeData(value)
        default:
            break
        }
        updateInterrupt()
    }

    private func status() -> UInt8 {
        var status = I8042Status.notInhibited | (control & I8042Control.systemFlag != 0 ? I8042Status.system : 0)
        if lastWriteWasCommand { status |= I8042Status.lastWriteWasCommand }
        if let head = output.first {
            status |= I8042Status.outputFull
            if head.auxiliary { status |= I8042Status.auxiliaryData }
        }
        return status
    }

    private func runCommand(_ command: UInt8) {
        pendingCommand = nil
        switch command {
        case I8042Command.readControl: reply(control)
        case I8042Command.writeControl, I8042Command.writeOutputPort, I8042Command.writeKeyboardBuffer,
             I8042Command.writeAuxiliaryBuffer, I8042Command.writeAuxiliaryDevice:
            pendingCommand = command
        case I8042Command.disableAuxiliary: control |= I8042Control.auxiliaryDisabled
        case I8042Command.enableAuxiliary: control &= ~I8042Control.auxiliaryDisabled
        case I8042Command.testAuxiliary: reply(I8042Reply.auxiliaryClockStuckLow)
        case I8042Command.selfTest: reply(I8042Reply.selfTestPassed)
        case I8042Command.testKeyboard: reply(I8042Reply.interfaceOK)
        case I8042Command.disableKeyboard: control |= I8042Control.keyboardDisabled
        case I8042Command.enableKeyboard: control &= ~I8042Control.keyboardDisabled
        case I8042Command.readOutputPort: reply(outputPort)
        default:
            if command & I8042Command.pulseOutputMask == I8042Command.pulseOutputMask
                && command & I8042Command.pulseResetLine == 0 {
                resets &+= 1
                onReset()
            }
            // Other commands (password, test inputs, vendor extensions) are ignored.
        }
    }

    private func writeData(_ value: UInt8) {
        guard let command = pendingCommand else { return keyboardReceive(value) }
        pendingCommand = nil
        switch command {
        case I8042Command.writeControl: control = value
        case I8042Command.writeOutputPort: outputPort = value
        case I8042Command.writeKeyboardBuffer: reply(value)
        // No AUX port: the loop byte comes back flagged as keyboard data (see the type's notes).
        case I8042Command.writeAuxiliaryBuffer: reply(value)
        default: break // writeAuxiliaryDevice: nothing is attached.
        }
    }

    /// The keyboard's side: acknowledge everything, answer the few queries a probe makes.
    private func keyboardReceive(_ value: UInt8) {
        switch value {
        case PS2Keyboard.echo: reply(PS2Keyboard.echo)
        case PS2Keyboard.identify: reply(PS2Keyboard.acknowledge); PS2Keyboard.identity.forEach { reply($0) }
        case PS2Keyboard.reset: reply(PS2Keyboard.acknowledge); reply(PS2Keyboard.selfTestPassed)
        default: reply(PS2Keyboard.acknowledge)
        }
    }

    private func reply(_ byte: UInt8) {
        guard output.count < Self.outputCapacity else { return }
        output.append((byte, false))
    }

    private func updateInterrupt() {
        let level = control & I8042Control.keyboardInterrupt != 0 && !output.isEmpty
        guard level != interruptLevel else { return }
        interruptLevel = level
        keyboardInterrupt(level)
    }
}
