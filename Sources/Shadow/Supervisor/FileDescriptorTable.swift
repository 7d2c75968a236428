/// Which local fd numbers (in the reserved range) stand for which guest fds.
///
/// One table per supervised command. Inherited across the inspector's forks
/// like a real fd table would be, but shared rather than copied: a close in
/// one process closes the guest fd for all (documented limitation; the
/// inspectors this is for do not fork).
public struct FileDescriptorTable: Sendable {
    /// One guest fd.
    public struct Entry: Equatable, Sendable {
        /// The fd number in S.
        public var guestFd: Int32
        /// The guest path it was opened with (absolute, or relative to a guest
        /// dirfd if so opened), for fchdir and messages.
        public var path: String
        /// The protocol when the fd is a netlink socket of S's (nil: a file).
        public var netlink: NetlinkProtocol? = nil
        /// The file's contents read ahead in a batch, when the inspector's
        /// reads are answered from them; `guestFd` is then -1 (the batch
        /// closed the guest's fd). Any other use reopens the file in the guest.
        public var snapshot: FileSnapshot? = nil
    }

    /// A guest file read whole (or its first bytes) at open time, or a
    /// directory and as much of its listing as was read.
    public struct FileSnapshot: Equatable, Sendable {
        /// The flags it was opened with, to reopen it with.
        public var flags: UInt64
        /// The bytes read: a file's contents, or a directory's whole
        /// getdents64 records (none when it was opened without O_DIRECTORY).
        public var contents: [UInt8]
        /// Whether the file or listing ended there (a read returned 0 after them).
        public var complete: Bool
        /// Its struct stat, taken through the guest fd (fstat answers from it).
        public var stat: [UInt8]
        /// Whether it is a directory (reads fail with EISDIR; getdents64 lists `contents`).
        public var directory = false
        /// The inspector's position in `contents`.
        public var offset = 0

        /// Where a reopened guest fd must be moved to continue at `offset`:
        /// the byte offset for a file; for a directory the d_off of the last
        /// record passed (an opaque position the guest's file system gave).
        public var guestPosition: UInt64 {
            guard directory else { return UInt64(offset) }
            return DirectoryRecords.position(after: offset, in: contents)
        }
    }

    /// The reserved range.
    public let range: GuestFdRange
    private var entries: [Int32: Entry] = [:]

    public init(range: GuestFdRange) { self.range = range }

    /// The entry for a raw fd argument, if it is a guest fd.
    public func entry(rawArgument: UInt64) -> Entry? {
        guard range.contains(rawArgument: rawArgument) else { return nil }
        return entries[Int32(truncatingIfNeeded: rawArgument)]
    }

    /// The entry for local fd `local`, if any.
    public func entry(local: Int32) -> Entry? { entries[local] }

    /// Records `local` → `entry` and returns the entry it replaced.
    @discardableResult
    public mutating func insert(local: Int32, _ entry: Entry) -> Entry? {
        entries.updateValue(entry, forKey: local)
    }

    /// Forgets `local` and returns its entry.
    @discardableResult
    public mutating func remove(local: Int32) -> Entry? { entries.removeValue(forKey: local) }

    /// The lowest reserved number ≥ `atLeast` not in the table for which
    /// `isTaken` is false (a local fd the inspector holds there).
    public func lowestFree(atLeast: Int32 = Int32.min, isTaken: (Int32) -> Bool = { _ in false }) -> Int32? {
        var fd = max(atLeast, range.lowerBound)
        while fd < range.upperBound {
            if entries[fd] == nil && !isTaken(fd) { return fd }
            fd += 1
        }
        return nil
    }

    /// Local numbers in [first, last], ascending.
    public func locals(in first: Int32, _ last: Int32) -> [Int32] {
        entries.keys.filter { $0 >= first && $0 <= last }.sorted()
    }

    /// All entries, by local number.
    public var all: [(local: Int32, entry: Entry)] {
        entries.sorted { $0.key < $1.key }.map { (local: $0.key, entry: $0.value) }
    }

    /// Number of open guest fds.
    public var count: Int { entries.count }
}
