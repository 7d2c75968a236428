import Glibc
import Guest

/// What a training run learned about one inspector: for each directory it
/// listed, the lookups it made about every numbered entry ("/proc/<pid>/stat",
/// opened read-only; "/proc/<pid>", stat'd), in order; and the sequence of
/// its other lookups ("/proc/net/tcp", then "/proc/net/tcp6"). A later run of
/// the same inspector that lists the same directory gets those lookups
/// predicted for every entry, and one whose first lookup is the sequence's
/// gets the rest of the sequence predicted; predictions run as batches
/// (`SyscallRedirector`'s fast path).
///
/// Stored as text, one file per key (`MemoStore`):
///
///     swvmm-memo 1
///     key 0123456789abcdef
///     directory /proc
///     lookup stat . 0
///     lookup open /stat 0
///     sequence open /proc/uptime 0
///
/// ("." is the entry itself; flags are decimal).
public struct CallMemo: Equatable, Sendable {
    public static let header = "swvmm-memo 1"
    /// The inspector and policy this memo is for (`MemoStore.key`).
    public var key: UInt64
    /// Per listed directory, the lookups made about each numbered entry.
    public var patterns: [String: [EntryLookup]]
    /// The lookups outside any listing, in the order the training run made them.
    public var sequence: [PathLookup]

    public init(key: UInt64, patterns: [String: [EntryLookup]] = [:], sequence: [PathLookup] = []) {
        self.key = key
        self.patterns = patterns
        self.sequence = sequence
    }

    /// The memo as its file's text.
    public var text: String {
        var lines = [CallMemo.header, "key \(hex(key, width: 16))"]
        for directory in patterns.keys.sorted() {
            lines.append("directory \(directory)")
            for lookup in patterns[directory] ?? [] {
                lines.append("lookup \(lookup.kind.rawValue) \(lookup.rest.isEmpty ? "." : lookup.rest) \(lookup.flags)")
            }
        }
        for lookup in sequence { lines.append("sequence \(lookup.kind.rawValue) \(lookup.path) \(lookup.flags)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Why a memo file's text was not used.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case corrupt(line: Int, String)
        case foreign(expected: UInt64, found: UInt64)

        public var description: String {
            switch self {
            case .corrupt(let line, let why): return "line \(line): \(why)"
            case .foreign(let expected, let found):
                return "made for key \(hex(found, width: 16)), not \(hex(expected, width: 16))"
            }
        }
    }

    /// Most lines a memo may have (a memo is a few patterns; more is not one).
    static let maximumLines = 4096

    /// Parses `text`, which must be a memo for `expectedKey`.
    public static func parse(_ text: String, expectedKey: UInt64) throws(ParseError) -> CallMemo {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0)
        guard lines.count <= maximumLines else { throw .corrupt(line: maximumLines, "too many lines") }
        guard lines.first == Substring(header) else { throw .corrupt(line: 1, "not a swvmm memo") }
        guard lines.count >= 2, lines[1].hasPrefix("key "), let key = UInt64(lines[1].dropFirst(4), radix: 16) else {
            throw .corrupt(line: 2, "no key")
        }
        guard key == expectedKey else { throw .foreign(expected: expectedKey, found: key) }
        var memo = CallMemo(key: key)
        var directory: String?
        for (index, line) in lines.enumerated().dropFirst(2) {
            let words = line.split(separator: " ", omittingEmptySubsequences: false)
            switch words.first {
            case "directory" where words.count == 2 && words[1].hasPrefix("/"):
                directory = String(words[1])
                memo.patterns[String(words[1])] = []
            case "lookup" where words.count == 4:
                guard let directory else { throw .corrupt(line: index + 1, "a lookup before any directory") }
                guard let kind = PathLookup.Kind(rawValue: String(words[1])), let flags = UInt64(words[3]),
                      words[2] == "." || words[2].hasPrefix("/") else {
                    throw .corrupt(line: index + 1, "bad lookup \"\(line)\"")
                }
                memo.patterns[directory, default: []].append(EntryLookup(kind: kind, rest: words[2] == "." ? "" : String(words[2]), flags: flags))
            case "sequence" where words.count == 4:
                guard let kind = PathLookup.Kind(rawValue: String(words[1])), let flags = UInt64(words[3]), words[2].hasPrefix("/") else {
                    throw .corrupt(line: index + 1, "bad sequence lookup \"\(line)\"")
                }
                memo.sequence.append(PathLookup(kind: kind, path: String(words[2]), flags: flags))
            default:
                throw .corrupt(line: index + 1, "unknown line \"\(line)\"")
            }
        }
        return memo
    }
}

/// Where memos live and what they are keyed by: `$XDG_CACHE_HOME/swvmm/`
/// (else `~/.cache/swvmm/`), mode 0700, one 0600 file per key. The key
/// hashes the contents of the inspector's executable and of every file it
/// has mapped, its arguments and the policy: a changed binary, library,
/// command line or policy is a new key, so a stale memo is never read (and
/// `ps -e` and `ps aux`, which look up different files, keep a memo each).
public struct MemoStore: Sendable {
    /// The directory memos are in.
    public let directory: String

    public init(directory: String) { self.directory = directory }

    /// The store under `cacheHome` (`$XDG_CACHE_HOME`), else under `home`'s
    /// `.cache`; nil without either (no memo is kept).
    public static func standard(cacheHome: String?, home: String?) -> MemoStore? {
        if let cacheHome, cacheHome.hasPrefix("/") { return MemoStore(directory: cacheHome + "/swvmm") }
        if let home, home.hasPrefix("/") { return MemoStore(directory: home + "/.cache/swvmm") }
        return nil
    }

    /// The store of this process's environment.
    public static func fromEnvironment() -> MemoStore? {
        standard(cacheHome: getenv("XDG_CACHE_HOME").map { String(cString: $0) },
                 home: getenv("HOME").map { String(cString: $0) })
    }

    func path(for key: UInt64) -> String { directory + "/memo-\(hex(key, width: 16)).txt" }

    /// The memo for `key`; nil when there is none. A memo that cannot be used
    /// (corrupt, another key's, unreadable) is nil too, and `warn` says why.
    public func load(key: UInt64, warn: (String) -> Void) -> CallMemo? {
        let file = path(for: key)
        let bytes: [UInt8]
        switch HostFile.read(file, limit: 1 << 20, flags: O_NOFOLLOW) {
        case .success(let read): bytes = read
        case .failure(let failure):
            if failure.errno != ENOENT { warn("swvmm: memo \(file) not used: \(failure)") }
            return nil
        }
        do {
            return try CallMemo.parse(String(decoding: bytes, as: UTF8.self), expectedKey: key)
        } catch {
            warn("swvmm: memo \(file) ignored: \(error)")
            return nil
        }
    }

    /// Writes `memo` (atomically: a private temporary file renamed over the
    /// old one). Failures are only said: a memo is an optimisation.
    public func save(_ memo: CallMemo, warn: (String) -> Void) {
        // ~/.cache may not exist yet (XDG base directory specification: create it, 0700).
        let parent = "/" + directory.split(separator: "/").dropLast().joined(separator: "/")
        if parent != "/" { _ = mkdir(parent, 0o700) }
        if let reason = preparePrivateDirectory(directory) {
            warn("swvmm: no memo kept: \(reason)")
            return
        }
        let file = path(for: memo.key)
        let temporary = file + ".\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { warn("swvmm: no memo kept: \(temporary): \(errnoText(errno))"); return }
        let failure = writeAll(fd, memo.text)
        close(fd)
        guard failure == nil, rename(temporary, file) == 0 else {
            warn("swvmm: no memo kept: writing \(file): \(errnoText(failure ?? errno))")
            unlink(temporary)
            return
        }
    }

    /// The key of the inspector process `pid` under `policy`: FNV-1a over
    /// the policy, its arguments, and the path and XXH64 of the contents of
    /// each of its mapped files (the executable among them); nil when one of
    /// them cannot be read.
    public static func key(inspector pid: Int32, policy: ShadowPolicy) -> UInt64? {
        var hash = FNV1a()
        hash.add(Array("\(policy.guestPaths)|\(policy.localPaths)|\(policy.allowWrites)".utf8))
        guard case .success(let arguments) = HostFile.read("/proc/\(pid)/cmdline"),
              case .success(let maps) = HostFile.read("/proc/\(pid)/maps") else { return nil }
        hash.add(arguments)
        var files = Set<String>()
        for line in String(decoding: maps, as: UTF8.self).split(separator: "\n") {
            // The path is the sixth field; "[vdso]" and the like are not files.
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            if fields.count == 6 {
                let path = fields[5].trimmingPrefix(while: { $0 == " " })
                if path.hasPrefix("/") && !path.hasSuffix(" (deleted)") { files.insert(String(path)) }
            }
        }
        guard !files.isEmpty else { return nil }
        for file in files.sorted() {
            var contents = XXH64()
            guard case .success = HostFile.forEachChunk(file, limit: 256 << 20, { contents.add($0) }) else { return nil }
            hash.add(Array(file.utf8) + [0])
            hash.add(contents.value.littleEndianBytes())
        }
        return hash.value
    }
}

/// 64-bit FNV-1a (Fowler, Noll, Vo): a fast hash for cache keys, not a
/// defence against someone who can write the inspector's files.
struct FNV1a {
    /// The FNV-1a 64-bit offset basis and prime (the FNV specification).
    static let offsetBasis: UInt64 = 0xcbf29ce484222325
    static let prime: UInt64 = 0x100000001b3
    private(set) var value = FNV1a.offsetBasis

    mutating func add(_ bytes: [UInt8]) {
        var h = value
        bytes.withUnsafeBufferPointer { buffer in
            for byte in buffer {
                h ^= UInt64(byte)
                h = h &* FNV1a.prime
            }
        }
        value = h
    }
}
