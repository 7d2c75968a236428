/// Ports, bits and commands of the PC keyboard controller (Intel 8042 as used by
/// the IBM PC/AT; IBM PS/2 Hardware Interface Technical Reference, "Keyboard/
/// Auxiliary Device Controller"). Names follow that reference.
public enum I8042Port {
    /// Data port: controller replies and device bytes (read), device data and command parameters (write).
    public static let data: UInt16 = 0x60
    /// Status register (read) / controller command (write).
    public static let command: UInt16 = 0x64
}

/// Status register bits (read at port 0x64).
enum I8042Status {
    /// Output buffer full: a byte waits at port 0x60.
    static let outputFull: UInt8 = 0x01
    /// Input buffer full: the controller has not taken the last write yet (never, here).
    static let inputFull: UInt8 = 0x02
    /// System flag: set once the controller passed its self-test (firmware leaves it set).
    static let system: UInt8 = 0x04
    /// The last write went to the command port (0x64) rather than the data port.
    static let lastWriteWasCommand: UInt8 = 0x08
    /// Keyboard not inhibited (the keylock switch is open).
    static let notInhibited: UInt8 = 0x10
    /// The byte in the output buffer came from the auxiliary (mouse) port.
    static let auxiliaryData: UInt8 = 0x20
}

/// Controller command byte ("CTR", read with 0x20, written with 0x60).
enum I8042Control {
    /// Raise IRQ 1 when keyboard data is in the output buffer.
    static let keyboardInterrupt: UInt8 = 0x01
    static let systemFlag: UInt8 = 0x04
    static let keyboardDisabled: UInt8 = 0x10
    static let auxiliaryDisabled: UInt8 = 0x20
    /// Translate keyboard scan code set 2 to set 1.
    static let translate: UInt8 = 0x40
    /// What PC firmware leaves: keyboard interrupt on, system flag, translation.
    static let firmwareDefault: UInt8 = keyboardInterrupt | systemFlag | translate
}

/// Controller commands (written to port 0x64).
enum I8042Command {
    static let readControl: UInt8 = 0x20
    static let writeControl: UInt8 = 0x60
    static let disableAuxiliary: UInt8 = 0xA7
    static let enableAuxiliary: UInt8 = 0xA8
    /// Auxiliary interface test: 0x00 = no error, 0x01-0x04 = clock/data line stuck.
    static let testAuxiliary: UInt8 = 0xA9
    /// Controller self-test: replies 0x55 when passed.
    static let selfTest: UInt8 = 0xAA
    /// Keyboard interface test: 0x00 = no error.
    static let testKeyboard: UInt8 = 0xAB
    static let disableKeyboard: UInt8 = 0xAD
    static let enableKeyboard: UInt8 = 0xAE
    static let readOutputPort: UInt8 = 0xD0
    static let writeOutputPort: UInt8 = 0xD1
    /// The next data byte is placed in the output buffer as if from the keyboard.
    static let writeKeyboardBuffer: UInt8 = 0xD2
    /// The next data byte is placed in the output buffer as if from the auxiliary device.
    static let writeAuxiliaryBuffer: UInt8 = 0xD3
    /// The next data byte is sent to the auxiliary device.
    static let writeAuxiliaryDevice: UInt8 = 0xD4
    /// 0xF0-0xFF pulse the output-port lines whose bits are 0 in the low nibble;
    /// bit 0 is the CPU reset line, so 0xFE is "reset the CPU" (what `reboot=k` sends).
    static let pulseOutputMask: UInt8 = 0xF0
    static let pulseResetLine: UInt8 = 0x01
}

/// Controller replies.
enum I8042Reply {
    static let selfTestPassed: UInt8 = 0x55
    static let interfaceOK: UInt8 = 0x00
    /// "Clock line stuck low": there is no auxiliary device behind this controller.
    static let auxiliaryClockStuckLow: UInt8 = 0x01
    /// Output port: bit 0 = CPU not in reset, bit 1 = A20 enabled.
    static let outputPortDefault: UInt8 = 0x03
}

/// Keyboard commands and replies (PS/2 keyboard, scan code set 2).
enum PS2Keyboard {
    static let acknowledge: UInt8 = 0xFA
    static let echo: UInt8 = 0xEE
    static let identify: UInt8 = 0xF2
    /// An MF2 keyboard's ID bytes.
    static let identity: [UInt8] = [0xAB, 0x83]
    static let reset: UInt8 = 0xFF
    /// Basic assurance test passed, sent after a reset.
    static let selfTestPassed: UInt8 = 0xAA
}
