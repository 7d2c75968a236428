import Glibc

/// A way to end every wait on a GDB stub at once, from any thread (a signal
/// watcher on Ctrl-C): connecting, the handshake, and waits for the guest.
///
/// A pipe whose read end every `Connection` wait polls next to its socket;
/// once `cancel()` has written a byte, which nobody reads, it stays readable,
/// so each wait in progress (and each later one) throws
/// `GDBRemoteError.cancelled` at once.
public final class Cancellation: Sendable {
    /// The end waits poll.
    let fd: Int32
    private let writeEnd: Int32

    public init() throws {
        var ends: [Int32] = [-1, -1]
        // pipe2 is not in Swift's Glibc module: pipe, then the flags (no fork can race
        // this: swvmm starts its inspector only after the connection exists).
        guard pipe(&ends) == 0 else { throw GDBRemoteError.system(operation: "pipe", errno: errno) }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
        }
        fd = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        close(fd)
        close(writeEnd)
    }

    /// Ends the waits in progress and every later one. Async-signal-safe (one write).
    public func cancel() {
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }

    /// Whether `cancel()` was called.
    public var isCancelled: Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, 0) > 0
    }
}
