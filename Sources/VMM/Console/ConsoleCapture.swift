import Synchronization

/// The last `capacity` bytes of console output, kept in memory for tests and for
/// the early-boot diagnostic (what did the guest print before it stopped?).
/// Thread-safe.
public final class ConsoleCapture: @unchecked Sendable {
    /// Default capacity: 1 MiB, far more than a kernel's boot log.
    public static let defaultCapacity = 1 << 20

    private let lock = Mutex(())
    private var ring: [UInt8]
    private var next = 0
    private var wrapped = false
    private var total: UInt64 = 0

    /// - Parameter capacity: bytes kept (at least 1); older bytes are forgotten.
    public init(capacity: Int = ConsoleCapture.defaultCapacity) {
        ring = [UInt8](repeating: 0, count: max(1, capacity))
    }

    /// Appends one byte.
    public func append(_ byte: UInt8) {
        lock.withLock { _ in store(byte) }
    }

    /// Appends bytes in order.
    public func append<Bytes: Sequence>(contentsOf bytes: Bytes) where Bytes.Element == UInt8 {
        lock.withLock { _ in for byte in bytes { store(byte) } }
    }

    /// The kept bytes, oldest first.
    public var bytes: [UInt8] {
        lock.withLock { _ in wrapped ? Array(ring[next...] + ring[..<next]) : Array(ring[..<next]) }
    }

    /// The kept bytes as text (invalid UTF-8 becomes U+FFFD).
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Every byte ever appended, including forgotten ones.
    public var totalBytes: UInt64 { lock.withLock { _ in total } }

    /// Forgets everything.
    public func clear() {
        lock.withLock { _ in next = 0; wrapped = false; total = 0 }
    }

    private func store(_ byte: UInt8) {
        ring[next] = byte
        next += 1
        if next == ring.count { next = 0; wrapped = true }
        total &+= 1
    }
}
