import Glibc
import Guest
import Synchronization

/// Unbuffered console output to a file descriptor (stdout by default), optionally
/// teed into a `ConsoleCapture`. Usable as the UART's output sink:
/// `Serial16550(output: console.write(byte:))`.
///
/// Each byte is written at once (write(2), retried on EINTR and partial writes) so
/// the guest's output is visible even if the VMM dies next. After a write error
/// other than EINTR/EAGAIN (a closed pipe, say) the descriptor is no longer written;
/// the capture keeps recording. (A closed pipe also raises SIGPIPE, which the
/// process should ignore for that error to be seen.)
public final class ConsoleOutput: @unchecked Sendable {
    private let fd: Int32?
    private let capture: ConsoleCapture?
    private let lock = Mutex(())
    private var failure: Int32?

    /// - Parameters:
    ///   - fd: where to write, or nil to only capture. The descriptor is not closed.
    ///   - capture: also record the output here.
    public init(fd: Int32? = STDOUT_FILENO, capture: ConsoleCapture? = nil) {
        self.fd = fd
        self.capture = capture
    }

    /// The errno of the write that failed, if writing to the descriptor stopped.
    public var writeError: Int32? { lock.withLock { _ in failure } }

    /// Writes one byte.
    public func write(byte: UInt8) {
        withUnsafeBytes(of: byte) { write($0) }
    }

    /// Writes `text` as UTF-8.
    public func write(_ text: String) {
        var text = text
        text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    /// Writes `bytes` in full (`writeAll`); after a failure, nothing more is written.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        capture?.append(contentsOf: bytes)
        guard let fd, !bytes.isEmpty else { return }
        lock.withLock { _ in
            guard failure == nil else { return }
            failure = writeAll(fd, bytes)
        }
    }
}
