/// Recognises the console's escape sequences in host keyboard input, like a
/// terminal multiplexer's prefix key. Pure state, so it is testable without a TTY.
///
/// - Ctrl-A x: quit (the VMM stops the VM).
/// - Ctrl-A Ctrl-A: one literal Ctrl-A for the guest.
/// - Ctrl-A followed by anything else: both bytes go to the guest unchanged.
public struct ConsoleEscape: Equatable, Sendable {
    /// The prefix key, Ctrl-A (ASCII SOH).
    public static let prefix: UInt8 = 0x01
    /// The key that, after the prefix, asks to quit.
    public static let quitKey = UInt8(ascii: "x")

    /// What one input byte amounts to.
    public enum Step: Equatable, Sendable {
        /// Nothing for the guest yet (the prefix, waiting for the next key).
        case pending
        /// One byte for the guest.
        case forward(UInt8)
        /// Two bytes for the guest (a prefix that did not start a command, and the key after it).
        case forwardPair(UInt8, UInt8)
        /// The user asked to quit.
        case quit
    }

    /// True after a prefix whose command key has not arrived yet.
    public private(set) var awaitingCommand = false

    /// A recogniser in its initial state.
    public init() {}

    /// Consumes one byte of host input.
    public mutating func feed(_ byte: UInt8) -> Step {
        guard awaitingCommand else {
            if byte == Self.prefix { awaitingCommand = true; return .pending }
            return .forward(byte)
        }
        awaitingCommand = false
        switch byte {
        case Self.quitKey: return .quit
        case Self.prefix: return .forward(Self.prefix)
        default: return .forwardPair(Self.prefix, byte)
        }
    }

    /// Consumes `bytes`; returns what goes to the guest and whether quit was asked
    /// (bytes after the quit key are discarded).
    public mutating func filter<Bytes: Sequence>(_ bytes: Bytes) -> (forward: [UInt8], quit: Bool)
    where Bytes.Element == UInt8 {
        var forward: [UInt8] = []
        for byte in bytes {
            switch feed(byte) {
            case .pending: break
            case .forward(let value): forward.append(value)
            case .forwardPair(let first, let second): forward.append(first); forward.append(second)
            case .quit: return (forward, true)
            }
        }
        return (forward, false)
    }
}
