import Glibc
import Guest

/// Turns SIGINT, SIGTERM and SIGHUP into an orderly stop instead of a death
/// that leaves the terminal in raw mode.
///
/// The signals are blocked in the calling thread before any other thread
/// exists (threads inherit the mask) and taken synchronously by one watcher
/// thread with sigwait(2), so the handler is ordinary Swift, not
/// async-signal-safe code. The vCPU kick signal stays unblocked.
public final class SignalWatcher: @unchecked Sendable {
    /// The signals that mean "stop": Ctrl-C outside raw mode, kill, a closed terminal.
    public static let stopSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP]
    private var thread: HostThread?

    /// Blocks the stop signals in this thread; call before starting any thread.
    public init() {
        var set = SignalWatcher.signalSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Starts the watcher; `onSignal` runs on its thread with the signal number, once.
    public func start(_ onSignal: @escaping @Sendable (Int32) -> Void) throws {
        thread = try HostThread(name: "signals") {
            var set = SignalWatcher.signalSet()
            var received: Int32 = 0
            if sigwait(&set, &received) == 0 { onSignal(received) }
        }
    }

    private static func signalSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in stopSignals { sigaddset(&set, signal) }
        return set
    }
}
