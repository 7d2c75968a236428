/// A read-only question an inspector asks the guest by path: open a file to
/// read it, stat a path, read a link. These are the calls the fast path may
/// answer from a batch; nothing that writes or keeps guest state is one.
public struct PathLookup: Hashable, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        /// open/openat for reading: answered with a snapshot of the file.
        case open
        /// stat/lstat/newfstatat: answered with the guest's struct stat.
        case stat
        /// readlink/readlinkat: answered with the link's bytes.
        case readlink
        /// statfs: answered with the guest's struct statfs.
        case statfs
        /// statx: answered with the guest's struct statx.
        case statx
    }

    public var kind: Kind
    /// The absolute, normalized guest path.
    public var path: String
    /// open: the open flags; stat: the AT_* flags; readlink: the buffer size; statfs: 0;
    /// statx: the AT_* flags in the low 32 bits, the mask in the high 32.
    public var flags: UInt64

    public init(kind: Kind, path: String, flags: UInt64) {
        self.kind = kind
        self.path = path
        self.flags = flags
    }

    /// Open flags a lookup may carry, include/uapi/asm-generic/fcntl.h:
    /// O_RDONLY (0) with O_NONBLOCK, O_NOCTTY, O_LARGEFILE, O_NOATIME,
    /// O_CLOEXEC, O_NOFOLLOW or O_DIRECTORY (the batch opens with the same
    /// flags, so they mean the same there); anything else (writing,
    /// creating, O_PATH, ...) is not a plain read.
    static let readOnlyOpenFlags: UInt64 = 0o4000 | 0o400 | 0o100000 | 0o1000000 | LinuxABI.oCloexec | 0o400000 | LinuxABI.oDirectory

    /// Whether this is an open of a directory to list it (O_DIRECTORY).
    var opensDirectory: Bool { kind == .open && flags & LinuxABI.oDirectory != 0 }
    /// The AT_* flags a stat lookup may carry.
    static let plainStatFlags = LinuxABI.atSymlinkNoFollow | LinuxABI.atNoAutomount
    /// statx's flags a lookup may carry: those and the sync type.
    static let statxFlags = plainStatFlags | LinuxABI.atStatxSyncType

    /// The lookup `request` makes, given its path already resolved to the
    /// absolute guest path `absolute` (relative to the root, not a dirfd;
    /// `emptyPath`: the call's path was "", so it names its dirfd's file);
    /// nil when the call is not a plain read-only lookup.
    static func of(_ request: SyscallRequest, absolute: String, emptyPath: Bool = false) -> PathLookup? {
        let a = request.arguments
        switch request.number {
        case LinuxABI.Syscall.open, LinuxABI.Syscall.openat:
            let flags = request.number == LinuxABI.Syscall.open ? a[1] : a[2]
            guard flags & ~readOnlyOpenFlags == 0 else { return nil }
            return PathLookup(kind: .open, path: absolute, flags: flags)
        case LinuxABI.Syscall.stat, LinuxABI.Syscall.lstat:
            return PathLookup(kind: .stat, path: absolute, flags: request.number == LinuxABI.Syscall.lstat ? LinuxABI.atSymlinkNoFollow : 0)
        case LinuxABI.Syscall.newfstatat:
            guard a[3] & ~plainStatFlags == 0 else { return nil }
            return PathLookup(kind: .stat, path: absolute, flags: a[3])
        case LinuxABI.Syscall.readlink, LinuxABI.Syscall.readlinkat:
            let size = Int32(truncatingIfNeeded: request.number == LinuxABI.Syscall.readlink ? a[2] : a[3])
            guard size > 0 else { return nil }
            return PathLookup(kind: .readlink, path: absolute, flags: UInt64(size))
        case LinuxABI.Syscall.statfs:
            return PathLookup(kind: .statfs, path: absolute, flags: 0)
        case LinuxABI.Syscall.statx:
            // A statx of the dirfd itself (AT_EMPTY_PATH, "") is one of its path.
            guard emptyPath == (a[2] & LinuxABI.atEmptyPath != 0), a[2] & ~(statxFlags | LinuxABI.atEmptyPath) == 0, a[3] <= UInt64(UInt32.max) else { return nil }
            return PathLookup(kind: .statx, path: absolute, flags: a[2] & statxFlags | a[3] << 32)
        default:
            return nil
        }
    }

    /// The calls whose lookups the fast path knows.
    static let numbers: Set<Int> = [LinuxABI.Syscall.open, LinuxABI.Syscall.openat, LinuxABI.Syscall.stat,
                                    LinuxABI.Syscall.lstat, LinuxABI.Syscall.newfstatat,
                                    LinuxABI.Syscall.readlink, LinuxABI.Syscall.readlinkat, LinuxABI.Syscall.statfs,
                                    LinuxABI.Syscall.statx]

    /// Whether a snapshot of the file read at open time answers an open of
    /// it soundly: a file under /proc (reading one has no side effect and
    /// ends), but none the policy keeps non-blocking (/proc/kmsg consumes
    /// what it returns and waits for more); or a module's attribute under
    /// /sys/module (plain values). Elsewhere in /sys a driver's attribute may
    /// act when read. A directory there is listed the same way.
    func readsAheadSoundly(under policy: ShadowPolicy) -> Bool {
        kind == .open && (path.hasPrefix("/proc/") || path.hasPrefix("/sys/module/")) && !policy.forcesNonBlocking(absolutePath: path)
    }

    /// Whether the fast path may predict this lookup: stats and readlinks
    /// anywhere the policy sends to the guest, opens only where reading
    /// ahead is sound; statfs of any path (it always asks the guest: the
    /// file systems are the machine's).
    func isPredictable(under policy: ShadowPolicy) -> Bool {
        if kind == .statfs { return true }
        return policy.route(absolutePath: path) == .guest && (kind != .open || readsAheadSoundly(under: policy))
    }

    /// Whether the path can be written in a memo line (no whitespace).
    var fitsAMemoLine: Bool { !path.utf8.contains { $0 == 0x20 || $0 == 0x0A || $0 == 0x09 || $0 == 0x0D } }
}

/// One lookup of a per-entry pattern: what an inspector asks about each
/// entry of a directory listing ("/proc/<pid>/stat"), the entry abstracted.
public struct EntryLookup: Hashable, Sendable {
    public var kind: PathLookup.Kind
    /// The path below the entry ("/stat"), "" for the entry itself.
    public var rest: String
    public var flags: UInt64

    public init(kind: PathLookup.Kind, rest: String, flags: UInt64) {
        self.kind = kind
        self.rest = rest
        self.flags = flags
    }

    /// The lookup for entry `name` of `directory`.
    func lookup(directory: String, entry name: String) -> PathLookup {
        PathLookup(kind: kind, path: directory + "/" + name + rest, flags: flags)
    }

    /// `lookup` as an entry lookup when its path lies in `entry` of
    /// `directory` (the entry itself or below it).
    static func of(_ lookup: PathLookup, directory: String, entry name: String) -> EntryLookup? {
        let prefix = directory + "/" + name
        guard lookup.path.hasPrefix(prefix) else { return nil }
        let rest = String(lookup.path.dropFirst(prefix.count))
        guard rest.isEmpty || rest.hasPrefix("/") else { return nil }
        return EntryLookup(kind: lookup.kind, rest: rest, flags: lookup.flags)
    }

    /// The entry of `directory` that `path` lies in, if `path` is below it.
    static func entryName(of path: String, in directory: String) -> String? {
        let prefix = directory + "/"
        guard path.hasPrefix(prefix) else { return nil }
        let name = path.dropFirst(prefix.count).prefix { $0 != "/" }
        return name.isEmpty ? nil : String(name)
    }

    /// Entry names the patterns cover: numbers (pids, tids), as in
    /// Hybrid-Bridge's abstraction of "/proc/<pid>/stat".
    static func isAbstracted(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 10 && name.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }
}
