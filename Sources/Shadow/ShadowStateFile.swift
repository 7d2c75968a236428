import Glibc
import Guest

/// The small file that lets a later run find S again (DESIGN.md §1), under
/// `/tmp/swvmm-UID/`: one place for every run of the same user, whatever its
/// environment. One file per target, keyed by the target's identity (see
/// `key(unixSocket:)`, `key(tcpHost:port:)`), not by how its address is
/// spelled. Text, `key=value` per line; everything read back is validated
/// against the guest before use, and nothing in guest memory is used to find S.
public struct ShadowStateFile {
    public let path: String
    /// Files larger than this are not state files of ours.
    static let maximumSize = 4096
    static let formatVersion = "3"

    /// The state file for target `key` (from `key(unixSocket:)` or `key(tcpHost:port:)`).
    public init(key: String, directory: String? = nil) {
        let dir = directory ?? ShadowStateFile.defaultDirectory()
        let safe = String(key.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" }.prefix(200))
        path = dir + "/shadow-" + safe + ".state"
    }

    /// `/tmp/swvmm-UID`: the same for every run of this user.
    public static func defaultDirectory() -> String {
        "/tmp/swvmm-\(getuid())"
    }

    /// The identity of a gdbstub's Unix socket: its device and inode, the
    /// same however the path is spelled (relative, `..`, a symlink); the
    /// normalized path when it cannot be read.
    public static func key(unixSocket path: String) -> String {
        var info = stat()
        if stat(path, &info) == 0 {
            return "unix-dev\(info.st_dev)-ino\(info.st_ino)"
        }
        return "unix-" + ShadowPolicy.normalize(path)
    }

    /// The identity of a gdbstub's TCP address: the numeric address HOST
    /// resolves to first (a loopback address as "loopback") and the port.
    public static func key(tcpHost host: String, port: UInt16) -> String {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { return "tcp-\(host)-\(port)" }
        defer { freeaddrinfo(list) }
        var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(first.pointee.ai_addr, first.pointee.ai_addrlen, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 else {
            return "tcp-\(host)-\(port)"
        }
        let numeric = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let loopback = numeric == "::1" || numeric.hasPrefix("127.")
        return "tcp-\(loopback ? "loopback" : numeric)-\(port)"
    }

    /// The directory holding the file, created if missing; it must be this
    /// user's and closed to others (it lives in a shared /tmp).
    private func checkedDirectory() throws -> String {
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
        if let reason = preparePrivateDirectory(directory) {
            throw ShadowError.stateFile(path: path, reason: reason)
        }
        return directory
    }

    /// Writes `shadow` (atomically: a temporary file renamed over the old one).
    public func save(_ shadow: ShadowProcess) throws {
        _ = try checkedDirectory()
        let text = [
            "version=\(ShadowStateFile.formatVersion)",
            "pid=\(shadow.pid)",
            "root=\(shadow.root.guestHex)",
            "five-level=\(shadow.paging.fiveLevel ? 1 : 0)",
            "no-execute=\(shadow.paging.noExecuteEnabled ? 1 : 0)",
            "region=\(shadow.regionBase.guestHex)",
            "length=\(shadow.regionLength)",
            "sleep-ns=\(shadow.sleepNanoseconds)",
            "cookie=\(shadow.cookie.map { hex($0, width: 2) }.joined())",
            "borrowed-pid=\(shadow.borrowedPID)",
            "syscall-offset=\(ShadowStub.syscallOffset)",
            "trap-offset=\(ShadowStub.trapOffset)",
        ].joined(separator: "\n") + "\n"
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ShadowError.stateFile(path: temporary, reason: "open: \(errnoText(errno))") }
        var failure = writeAll(fd, text)
        close(fd)
        if failure == nil, rename(temporary, path) != 0 { failure = errno }
        if let failure {
            unlink(temporary)
            throw ShadowError.stateFile(path: path, reason: "write/rename failed: \(errnoText(failure))")
        }
    }

    /// The saved S, nil when there is no file. Throws when it is malformed.
    public func load() throws -> ShadowProcess? {
        _ = try checkedDirectory()
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw ShadowError.stateFile(path: path, reason: "open: \(errnoText(errno))")
        }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: ShadowStateFile.maximumSize + 1)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0, count <= ShadowStateFile.maximumSize else {
            throw ShadowError.stateFile(path: path, reason: "empty, unreadable or larger than \(ShadowStateFile.maximumSize) bytes")
        }
        var fields: [String: String] = [:]
        for line in String(decoding: buffer[..<count], as: UTF8.self).split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            fields[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        func number(_ key: String, radix: Int = 10) throws -> UInt64 {
            var text = fields[key] ?? ""
            if radix == 16, text.hasPrefix("0x") { text.removeFirst(2) }
            guard let value = UInt64(text, radix: radix) else { throw ShadowError.stateFile(path: path, reason: "bad or missing '\(key)'") }
            return value
        }
        guard fields["version"] == ShadowStateFile.formatVersion,
              fields["syscall-offset"] == String(ShadowStub.syscallOffset),
              fields["trap-offset"] == String(ShadowStub.trapOffset) else {
            throw ShadowError.stateFile(path: path, reason: "written by another version of the stub")
        }
        let cookieText = Array((fields["cookie"] ?? "").utf8)
        guard cookieText.count == 2 * ShadowStub.cookieLength else { throw ShadowError.stateFile(path: path, reason: "bad cookie") }
        var cookie: [UInt8] = []
        for i in stride(from: 0, to: cookieText.count, by: 2) {
            guard let byte = UInt8(String(decoding: cookieText[i ..< i + 2], as: UTF8.self), radix: 16) else {
                throw ShadowError.stateFile(path: path, reason: "bad cookie")
            }
            cookie.append(byte)
        }
        let length = try number("length")
        guard length <= UInt64(ShadowStub.maximumRegion) else { throw ShadowError.stateFile(path: path, reason: "region length \(length)") }
        func flag(_ key: String) throws -> Bool {
            let value = try number(key)
            guard value <= 1 else { throw ShadowError.stateFile(path: path, reason: "bad '\(key)'") }
            return value == 1
        }
        let paging = PagingContext(root: try number("root", radix: 16), fiveLevel: try flag("five-level"),
                                   noExecuteEnabled: try flag("no-execute"))
        return ShadowProcess(pid: Int64(bitPattern: try number("pid")), paging: paging,
                             regionBase: try number("region", radix: 16), regionLength: Int(length), cookie: cookie,
                             sleepNanoseconds: try number("sleep-ns"), borrowedPID: Int64(bitPattern: try number("borrowed-pid")))
    }

    /// Removes the file (S is gone).
    public func remove() { unlink(path) }
}
