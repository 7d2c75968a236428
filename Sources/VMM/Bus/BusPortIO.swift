/// Dispatches guest port I/O (KVM_EXIT_IO) to registered devices.
///
/// Register devices before starting vCPUs (registration is thread-safe, but a
/// vCPU may see the bus without a device registered concurrently). Unclaimed reads
/// return 0xFF bytes and unclaimed writes are dropped; both are counted.
public final class PortIOBus: @unchecked Sendable {
    /// The x86 I/O space is 64 Ki ports.
    private static let portSpaceEnd: UInt64 = 0x1_0000
    private let core = BusCore<any PortIODevice>(space: .portIO, spaceEnd: PortIOBus.portSpaceEnd)

    /// Creates an empty bus.
    public init() {}

    /// Claims ports `base ..< base + length` for `device`. The same device may be
    /// registered at several ranges; all share one lock.
    /// - Throws: `BusError` if the range is empty, leaves the port space, or overlaps another range.
    public func register(_ device: any PortIODevice, name: String, base: UInt16, length: UInt16) throws {
        try core.register(device, identity: ObjectIdentifier(device), name: name, base: UInt64(base), length: UInt64(length))
    }

    /// Handles a guest `in`: fills `data` (its count is the access size).
    public func read(port: UInt16, into data: UnsafeMutableRawBufferPointer) {
        guard let entry = core.claim(UInt64(port), isWrite: false) else { return fillUnclaimed(data) }
        let offset = UInt16(truncatingIfNeeded: UInt64(port) - entry.base)
        entry.slot.lock.withLock { _ in
            entry.reads &+= 1
            entry.slot.device.read(port: port, offset: offset, into: data)
        }
    }

    /// Handles a guest `out` of `data`.
    public func write(port: UInt16, data: UnsafeRawBufferPointer) {
        guard let entry = core.claim(UInt64(port), isWrite: true) else { return }
        let offset = UInt16(truncatingIfNeeded: UInt64(port) - entry.base)
        entry.slot.lock.withLock { _ in
            entry.writes &+= 1
            entry.slot.device.write(port: port, offset: offset, data: data)
        }
    }

    /// A snapshot of the access counters.
    public func statistics() -> BusStatistics { core.statistics() }
}
