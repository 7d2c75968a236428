/// Where a path's calls run.
public enum Route: Equatable, Sendable {
    case local
    case guest
}

/// Decides which paths belong to the guest, and whether guest writes are allowed.
///
/// A path is matched against both lists by whole components; the longest
/// matching prefix wins, and on a tie the local list wins. Loader, library
/// and locale paths are in the local list by default so that `--guest-path /`
/// cannot take the inspector's own libraries away.
public struct ShadowPolicy: Equatable, Sendable {
    /// Paths whose contents describe the machine: the guest's.
    /// `/dev/kmsg` is the kernel log (util-linux `dmesg` reads it before
    /// syslog(2)): left under the local `/dev` it would show the host's log.
    public static let defaultGuestPaths = [
        "/proc", "/sys", "/etc/passwd", "/etc/group", "/etc/hostname",
        "/run/utmp", "/var/run/utmp", "/etc/mtab", "/dev/kmsg",
    ]
    /// Guest files whose reads wait for new data (the kernel log's end,
    /// `/dev/kmsg` and `/proc/kmsg`): their
    /// guest opens get O_NONBLOCK so that a read past the end answers EAGAIN
    /// instead of parking the shadow process until the guest logs again.
    public static let nonBlockingGuestPaths = ["/dev/kmsg", "/proc/kmsg"]
    /// Paths that must stay the host's for the inspector to run at all.
    public static let defaultLocalPaths = [
        "/lib", "/lib64", "/lib32", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libexec",
        "/etc/ld.so.cache", "/etc/ld.so.preload", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
        "/usr/share/locale", "/usr/lib/locale", "/usr/share/i18n", "/etc/locale.alias",
        "/usr/lib/x86_64-linux-gnu/gconv", "/etc/localtime", "/usr/share/zoneinfo",
        "/etc/nsswitch.conf", "/dev",
    ]

    public private(set) var guestPaths: [String]
    public private(set) var localPaths: [String]
    /// The two lists as `route` matches them.
    private let guestPrefixes: PathPrefixSet, localPrefixes: PathPrefixSet
    /// Whether writes to guest files are allowed (`--allow-writes`).
    public var allowWrites: Bool

    /// The default policy plus `--guest-path`/`--local-path` additions.
    public init(extraGuestPaths: [String] = [], extraLocalPaths: [String] = [], allowWrites: Bool = false) {
        guestPaths = Self.defaultGuestPaths + extraGuestPaths.map(Self.normalize)
        localPaths = Self.defaultLocalPaths + extraLocalPaths.map(Self.normalize)
        guestPrefixes = PathPrefixSet(guestPaths)
        localPrefixes = PathPrefixSet(localPaths)
        self.allowWrites = allowWrites
    }

    /// Route of an absolute path (normalized here first).
    public func route(absolutePath: String) -> Route {
        route(normalizedPath: Self.normalize(absolutePath))
    }

    /// Route of a path `normalize` has made already.
    func route(normalizedPath: String) -> Route {
        var path = normalizedPath
        return path.withUTF8 { guestPrefixes.longestMatch($0) > localPrefixes.longestMatch($0) ? .guest : .local }
    }

    /// Whether a guest open of `absolutePath` must not block (see `nonBlockingGuestPaths`).
    public func forcesNonBlocking(absolutePath: String) -> Bool {
        let path = Self.normalize(absolutePath)
        return Self.nonBlockingGuestPaths.contains { Self.isWithin(path, $0) }
    }

    /// Whether `path` is `prefix` or below it (component-wise).
    static func isWithin(_ path: String, _ prefix: String) -> Bool {
        var path = path, prefix = prefix
        return path.withUTF8 { p in prefix.withUTF8 { PathPrefixSet.isWithin(p, $0) } }
    }

    /// Lexical normalization: collapses `//`, `.` and `..` (symlinks are not
    /// resolved; that is the kernel's business on whichever side runs the call).
    public static func normalize(_ path: String) -> String {
        if isNormal(path) { return path }
        var parts: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(component)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// Whether `path` is already what `normalize` makes of it: "/" and
    /// components, none empty, "." or "..". Most paths an inspector gives
    /// are, and this check costs a fraction of splitting and joining them.
    static func isNormal(_ path: String) -> Bool {
        var path = path
        return path.withUTF8 { bytes in
            let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
            guard bytes.first == slash else { return false }
            var length = 0, dots = 0, components = 0
            func ends() -> Bool { length > 0 && !(length == dots && dots <= 2) }
            for byte in bytes.dropFirst() {
                if byte == slash {
                    guard ends() else { return false }
                    components += 1
                    length = 0
                    dots = 0
                } else {
                    length += 1
                    if byte == dot { dots += 1 }
                }
            }
            return length == 0 ? components == 0 : ends()
        }
    }

    /// Joins a relative path onto an absolute directory.
    public static func join(_ directory: String, _ relative: String) -> String {
        if relative.hasPrefix("/") { return relative }
        if relative.isEmpty { return directory }
        return directory.hasSuffix("/") ? directory + relative : directory + "/" + relative
    }

    // open(2) flag bits, include/uapi/asm-generic/fcntl.h (x86_64 uses the generic values).
    static let openWriteOnly: UInt64 = 0o1
    static let openReadWrite: UInt64 = 0o2
    static let openCreate: UInt64 = 0o100
    static let openTruncate: UInt64 = 0o1000
    static let openAppend: UInt64 = 0o2000
    /// O_TMPFILE = __O_TMPFILE | O_DIRECTORY; __O_TMPFILE is 0o20000000.
    static let openTmpfileBit: UInt64 = 0o20000000
    /// O_NONBLOCK.
    public static let openNonBlocking: UInt64 = 0o4000

    /// Whether open flags ask to modify or create.
    public static func openWrites(flags: UInt64) -> Bool {
        let mask = openWriteOnly | openReadWrite | openCreate | openTruncate | openAppend | openTmpfileBit
        return flags & mask != 0
    }
}
