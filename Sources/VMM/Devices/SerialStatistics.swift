/// Counters of one UART, for `--trace-exits` and exit statistics.
public struct SerialStatistics: Equatable, Sendable {
    /// Bytes the guest wrote to THR that went to the output sink (loopback excluded).
    public var transmittedBytes: UInt64 = 0
    /// Host bytes accepted into the receive FIFO.
    public var receivedBytes: UInt64 = 0
    /// Host bytes dropped because the receive FIFO was full (each also sets LSR.OE).
    public var droppedBytes: UInt64 = 0
    /// Bytes the guest read from RBR (host input and loopback).
    public var guestReadBytes: UInt64 = 0
    /// Times the interrupt line went from low to high.
    public var interruptsRaised: UInt64 = 0
}
