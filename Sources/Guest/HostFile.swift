import Glibc

/// Files of this host read whole and bounded, or chunk by chunk: the one
/// reader behind the supervisor's questions about processes (/proc status,
/// fdinfo, cmdline, maps, links), the memo store's loads and keys (the
/// inspector's mapped files, hashed as they stream by) and the host's own
/// facts (/proc/cpuinfo).
public enum HostFile {
    /// Why a file could not be read whole.
    public struct Failure: Error, CustomStringConvertible {
        public var errno: Int32
        public var description: String { errno == EFBIG ? "larger than expected" : errnoText(errno) }
    }

    /// A file's bytes, opened with `flags` besides O_RDONLY | O_CLOEXEC; a
    /// file longer than `limit` is EFBIG.
    public static func read(_ path: String, limit: Int = 16 << 20, flags: Int32 = 0) -> Result<[UInt8], Failure> {
        var bytes: [UInt8] = []
        return forEachChunk(path, limit: limit, flags: flags) { bytes += $0 }.map { _ in bytes }
    }

    /// Hands a file's bytes to `body` in order, a chunk of at most 64 KiB at
    /// a time from one reused buffer (no copy of the whole file), and returns
    /// how many there were. Opened and bounded as `read`; after a failure
    /// `body` may have seen part of the file.
    public static func forEachChunk(_ path: String, limit: Int = 16 << 20, flags: Int32 = 0,
                                    _ body: (UnsafeRawBufferPointer) -> Void) -> Result<Int, Failure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC | flags)
        guard fd >= 0 else { return .failure(Failure(errno: errno)) }
        defer { close(fd) }
        var total = 0
        var chunk = [UInt8](repeating: 0, count: min(limit + 1, 1 << 16))
        return chunk.withUnsafeMutableBytes { buffer in
            while total <= limit {
                let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { return .failure(Failure(errno: errno)) }
                if n == 0 { return .success(total) }
                total += n
                if total <= limit { body(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) }
            }
            return .failure(Failure(errno: EFBIG))
        }
    }

    /// A text file of at most `limit` bytes (a /proc status or fdinfo), or nil.
    public static func text(_ path: String, limit: Int = 1 << 16) -> String? {
        guard case .success(let bytes) = read(path, limit: limit) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The number on the line that starts with `name` ("Tgid:", "Pid:") in a
    /// /proc status or fdinfo text.
    public static func field(_ name: String, in text: String) -> Int32? {
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
            return Int32(String(line.dropFirst(name.count).drop(while: blank).reversed().drop(while: blank).reversed()))
        }
        return nil
    }

    /// Where the symbolic link at `path` points (at most 255 bytes), or nil.
    public static func link(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
