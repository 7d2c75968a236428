extension PortIOBus {
    /// Carries out one port I/O exit: every repetition of a string instruction,
    /// each `size` bytes, read from or written to the device at `io.port`.
    public func dispatch(_ io: PortIOExit) {
        for repetition in 0..<io.count {
            let start = repetition * io.size
            let slice = UnsafeMutableRawBufferPointer(rebasing: io.data[start..<(start + io.size)])
            switch io.direction {
            case .read: read(port: io.port, into: slice)
            case .write: write(port: io.port, data: UnsafeRawBufferPointer(slice))
            }
        }
    }
}
