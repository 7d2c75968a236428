import Glibc
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

    /// Writes `bytes` in full.
    /// Writes `text` as UTF-8.
    public func write(_ text: String) {
        var text = text
        text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) {
        capture?.append(contentsOf: bytes)
        guard let fd, !bytes.isEmpty, let base = bytes.baseAddress else { return }
        lock.withLock { _ in
            guard failure == nil else { return }
            var done = 0
            while done < bytes.count {
                let written = Glibc.write(fd, base + done, bytes.count - done)
                if written > 0 { done += written; continue }
                let error = written < 0 ? errno : EIO
                if error == EINTR { continue }
                if error == EAGAIN || error == EWOULDBLOCK { waitWritable(fd); continue }
                failure = error
                return
            }
        }
    }

    /// A non-blocking descriptor (one shared with another program) is full: wait for room.
    private func waitWritable(_ fd: Int32) {
        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        _ = poll(&entry, 1, -1)
    }
}
