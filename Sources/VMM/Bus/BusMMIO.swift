/// Dispatches guest MMIO (KVM_EXIT_MMIO) to registered devices.
///
/// Same rules as `PortIOBus`: unclaimed reads return 0xFF bytes, unclaimed writes
/// are dropped, both counted; each device's accesses are serialised by its own lock.
public final class MMIOBus: @unchecked Sendable {
    private let core = BusCore<any MMIODevice>(space: .mmio, spaceEnd: nil)

    /// Creates an empty bus.
    public init() {}

    /// Claims guest-physical addresses `base ..< base + length` for `device`.
    /// - Throws: `BusError` if the range is empty, wraps past 2^64, or overlaps another range.
    public func register(_ device: any MMIODevice, name: String, base: UInt64, length: UInt64) throws {
        try core.register(device, identity: ObjectIdentifier(device), name: name, base: base, length: length)
    }

    /// Handles a guest MMIO read: fills `data` (its count is the access size).
    public func read(address: UInt64, into data: UnsafeMutableRawBufferPointer) {
        guard let entry = core.claim(address, isWrite: false) else { return fillUnclaimed(data) }
        entry.slot.lock.withLock { _ in
            entry.reads &+= 1
            entry.slot.device.read(address: address, offset: address - entry.base, into: data)
        }
    }

    /// Handles a guest MMIO write of `data`.
    public func write(address: UInt64, data: UnsafeRawBufferPointer) {
        guard let entry = core.claim(address, isWrite: true) else { return }
        entry.slot.lock.withLock { _ in
            entry.writes &+= 1
            entry.slot.device.write(address: address, offset: address - entry.base, data: data)
        }
    }

    /// A snapshot of the access counters.
    public func statistics() -> BusStatistics { core.statistics() }
}
