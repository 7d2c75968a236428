import Glibc

/// A non-recursive mutual-exclusion lock over `pthread_mutex_t`.
///
/// The mutex lives in its own heap allocation because a `pthread_mutex_t`
/// must not move while in use, and Swift may move stored properties.
public final class Lock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    /// Creates an unlocked, default-attribute (non-recursive) mutex.
    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        // Default attributes cannot fail on Linux (pthread_mutex_init(3) documents
        // only EAGAIN/ENOMEM/EPERM for robust/shared attributes, which we don't use).
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with the lock held. Must not be re-entered on the same thread.
    @inline(__always)
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
