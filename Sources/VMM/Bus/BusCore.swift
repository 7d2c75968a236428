import Synchronization

/// The address decoding shared by `PortIOBus` and `MMIOBus`: a sorted table of
/// non-overlapping ranges, binary search on dispatch, and counters.
///
/// Locking: `tableLock` guards the table and the unclaimed counters and is held
/// only for the lookup; the access itself runs under the device's own lock, so
/// vCPUs touching different devices never wait for each other. A device registered
/// at several ranges (the i8042 at 0x60 and 0x64) shares one lock across them.
final class BusCore<Device>: @unchecked Sendable {
    /// One device and the lock that serialises every access to it.
    final class Slot {
        let device: Device
        let identity: ObjectIdentifier
        let lock = Mutex(())
        init(device: Device, identity: ObjectIdentifier) { self.device = device; self.identity = identity }
    }

    /// One registered range; `reads`/`writes` are guarded by `slot.lock`.
    final class Entry {
        let name: String
        let base: UInt64
        let length: UInt64
        let slot: Slot
        var reads: UInt64 = 0
        var writes: UInt64 = 0
        init(name: String, base: UInt64, length: UInt64, slot: Slot) {
            self.name = name; self.base = base; self.length = length; self.slot = slot
        }
        /// Last address of the range (inclusive, so a range ending at the top of the space is representable).
        var last: UInt64 { base + (length - 1) }
    }

    /// How many distinct unclaimed addresses are counted individually.
    static var unclaimedAddressLimit: Int { 64 }

    let space: BusAddressSpace
    /// One past the highest address of the space (0x1_0000 for ports); nil for the full 64-bit space.
    let spaceEnd: UInt64?
    private let tableLock = Mutex(())
    private var entries: [Entry] = []
    private var unclaimedReads: UInt64 = 0
    private var unclaimedWrites: UInt64 = 0
    private var unclaimedByAddress: [UInt64: UInt64] = [:]

    init(space: BusAddressSpace, spaceEnd: UInt64?) {
        self.space = space
        self.spaceEnd = spaceEnd
    }

    func register(_ device: Device, identity: ObjectIdentifier, name: String, base: UInt64, length: UInt64) throws {
        guard length > 0 else { throw BusError.emptyRange(space: space, name: name, base: base) }
        let (last, wrapped) = base.addingReportingOverflow(length - 1)
        if wrapped || (spaceEnd.map { last >= $0 } ?? false) {
            throw BusError.rangeWrapsAround(space: space, name: name, base: base, length: length)
        }
        try tableLock.withLock { _ in
            // Both ranges are inclusive [base, last]; they intersect unless one ends before the other starts.
            if let clash = entries.first(where: { !($0.last < base || last < $0.base) }) {
                throw BusError.overlap(space: space, name: name, base: base, length: length,
                                       existingName: clash.name, existingBase: clash.base,
                                       existingLength: clash.length)
            }
            let slot = entries.first(where: { $0.slot.identity == identity })?.slot
                ?? Slot(device: device, identity: identity)
            let entry = Entry(name: name, base: base, length: length, slot: slot)
            let index = entries.firstIndex(where: { $0.base > base }) ?? entries.count
            entries.insert(entry, at: index)
        }
    }

    /// The range containing `address`, or nil after counting the access as unclaimed.
    func claim(_ address: UInt64, isWrite: Bool) -> Entry? {
        tableLock.withLock { _ in
            // Binary search for the last entry whose base is <= address.
            var low = 0, high = entries.count
            while low < high {
                let mid = (low + high) / 2
                if entries[mid].base <= address { low = mid + 1 } else { high = mid }
            }
            if low > 0, address <= entries[low - 1].last { return entries[low - 1] }
            if isWrite { unclaimedWrites &+= 1 } else { unclaimedReads &+= 1 }
            if let count = unclaimedByAddress[address] {
                unclaimedByAddress[address] = count &+ 1
            } else if unclaimedByAddress.count < Self.unclaimedAddressLimit {
                unclaimedByAddress[address] = 1
            }
            return nil
        }
    }

    func statistics() -> BusStatistics {
        let (snapshot, reads, writes, byAddress) = tableLock.withLock { _ in
            (entries, unclaimedReads, unclaimedWrites, unclaimedByAddress)
        }
        let ranges = snapshot.map { entry in
            entry.slot.lock.withLock { _ in
                BusRangeStatistics(name: entry.name, base: entry.base, length: entry.length,
                                   reads: entry.reads, writes: entry.writes)
            }
        }
        return BusStatistics(space: space, ranges: ranges, unclaimedReads: reads,
                             unclaimedWrites: writes, unclaimedByAddress: byAddress)
    }
}

/// The value an unclaimed read returns: all ones, what a PC's floating ISA bus reads as.
@inline(__always)
func fillUnclaimed(_ data: UnsafeMutableRawBufferPointer) {
    for index in data.indices { data[index] = 0xFF }
}
