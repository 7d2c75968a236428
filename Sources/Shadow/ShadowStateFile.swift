import Glibc
import Guest

/// The small file that lets a later run find S again (DESIGN.md §1), under
/// `$XDG_RUNTIME_DIR/swvmm/` (else `/tmp/swvmm-UID/`), one per target
/// address. Text, `key=value` per line; everything read back is validated
/// against the guest before use.
public struct ShadowStateFile {
    public let path: String
    /// Files larger than this are not state files of ours.
    static let maximumSize = 4096
    static let formatVersion = "2"

    /// The state file for target `key` (e.g. "unix:/path/gdb.sock").
    public init(key: String, directory: String? = nil) {
        let dir = directory ?? ShadowStateFile.defaultDirectory()
        let safe = String(key.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" }.prefix(200))
        path = dir + "/shadow-" + safe + ".state"
    }

    /// `$XDG_RUNTIME_DIR/swvmm`, or `/tmp/swvmm-UID` without it.
    public static func defaultDirectory() -> String {
        if let runtime = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), runtime.hasPrefix("/") {
            return runtime + "/swvmm"
        }
        return "/tmp/swvmm-\(getuid())"
    }

    /// Writes `shadow` (atomically: a temporary file renamed over the old one).
    public func save(_ shadow: ShadowProcess) throws {
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw ShadowError.stateFile(path: path, reason: "cannot create \(directory): \(errnoText(errno))")
        }
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
        let fd = open(path, O_RDONLY | O_CLOEXEC)
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
