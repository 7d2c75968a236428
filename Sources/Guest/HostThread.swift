import Glibc

/// A joinable POSIX thread running one closure: each vCPU gets one, and so
/// does the shadow control server.
///
/// Plain pthreads rather than Swift concurrency: a vCPU thread blocks inside
/// KVM_RUN for as long as the guest runs, and must be signalable by its
/// pthread id to be kicked out (see `VirtualCPU.requestExit()`).
public final class HostThread: @unchecked Sendable {
    private var thread = pthread_t()
    private var joined = false

    /// Errors starting a thread.
    public enum StartError: Error, CustomStringConvertible {
        case createFailed(errno: Int32)
        public var description: String { "cannot start a thread: \(errnoText(errnoValue))" }
        private var errnoValue: Int32 { if case let .createFailed(value) = self { return value }; return 0 }
    }

    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// Starts `body` on a new thread.
    /// `name` (at most 15 bytes, the kernel's comm limit) shows in `top -H` and
    /// `/proc/PID/task/*/comm`.
    public init(name: String? = nil, _ body: @escaping () -> Void) throws {
        let named: () -> Void = {
            if let name { HostThread.setCurrentName(name) }
            body()
        }
        let context = Unmanaged.passRetained(Body(named)).toOpaque()
        let result = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<Body>.fromOpaque(raw).takeRetainedValue().run()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw StartError.createFailed(errno: result)
        }
    }

    /// Names the calling thread through procfs (prctl(2) is variadic, which Swift cannot call).
    private static func setCurrentName(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { writeAll(fd, $0) }
    }

    /// Waits for the thread to finish (once; later calls return at once).
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }
}
