/// A bounded byte queue (ring buffer) for the UART's receive side.
struct SerialFIFO {
    private var storage: [UInt8]
    private var head = 0
    private(set) var count = 0

    /// `capacity` is clamped to at least 1 so the ring arithmetic never divides by zero.
    init(capacity: Int) {
        storage = [UInt8](repeating: 0, count: max(1, capacity))
    }

    var capacity: Int { storage.count }
    var isEmpty: Bool { count == 0 }
    var isFull: Bool { count == storage.count }

    /// Appends `byte`; returns false (and drops it) when full.
    mutating func push(_ byte: UInt8) -> Bool {
        guard !isFull else { return false }
        storage[(head + count) % storage.count] = byte
        count += 1
        return true
    }

    /// Removes and returns the oldest byte, or nil when empty.
    mutating func pop() -> UInt8? {
        guard count > 0 else { return nil }
        let byte = storage[head]
        head = (head + 1) % storage.count
        count -= 1
        return byte
    }

    mutating func removeAll() {
        head = 0
        count = 0
    }
}
