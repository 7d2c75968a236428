/// Where `TerminalConsole` delivers host keyboard/stdin bytes (a UART's receiver).
public protocol ConsoleInputSink: AnyObject {
    /// Delivers all of `bytes`; what does not fit is dropped (and counted by the sink).
    /// Used for an interactive terminal, where blocking would make the quit escape unresponsive.
    func enqueueInput(_ bytes: [UInt8])
    /// Accepts as many of `bytes` as fit without loss and returns how many.
    /// Used for piped stdin, where the console waits and offers the rest again.
    func offerInput(_ bytes: ArraySlice<UInt8>) -> Int
}
