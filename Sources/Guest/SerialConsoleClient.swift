import Glibc

/// Why a guest's serial console failed.
public enum SerialConsoleClientError: Error, Equatable, CustomStringConvertible {
    /// The socket could not be made or reached.
    case connect(path: String, errno: Int32)
    /// The other end closed: the guest's emulator exited.
    case closed
    /// Typing failed.
    case send(errno: Int32)
    /// The marker did not come within the time allowed; the last output read.
    case timeout(marker: String, tail: String)

    public var description: String {
        switch self {
        case let .connect(path, code): return "serial console: cannot connect to \(path): \(errnoText(code))"
        case .closed: return "serial console: the console closed"
        case let .send(code): return "serial console: send: \(errnoText(code))"
        case let .timeout(marker, tail): return "serial console: no '\(marker)' in time; last output: \(tail)"
        }
    }
}

/// A client of a guest's serial console on a Unix socket (QEMU's
/// `-chardev socket,server=on`): types into the guest's shell and reads
/// its output up to a marker. The output is the guest's, so every read is
/// bounded in time and in what is kept.
public final class SerialConsoleClient {
    private let fd: Int32
    private var buffer: [UInt8] = []
    /// The most output kept while waiting for a marker (older output is dropped).
    public static let bufferLimit = 1 << 22

    /// Connects to `socketPath`, retrying until `timeout` (the emulator may
    /// not have made the socket yet).
    public init(socketPath: String, timeout: Duration) throws(SerialConsoleClientError) {
        let path = Array(socketPath.utf8)
        var address = sockaddr_un()
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw .connect(path: socketPath, errno: ENAMETOOLONG)
        }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.enumerated() { raw[index] = byte }
        }
        let deadline = monotonicNanoseconds() &+ UInt64(max(0, timeout.seconds) * 1e9)
        while true {
            let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard s >= 0 else { throw .connect(path: socketPath, errno: errno) }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if connected == 0 {
                fd = s
                return
            }
            let failure = errno
            close(s)
            guard monotonicNanoseconds() < deadline else { throw .connect(path: socketPath, errno: failure) }
            usleep(50_000)
        }
    }

    deinit { close(fd) }

    /// Types `text` into the console.
    public func type(_ text: String) throws(SerialConsoleClientError) {
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw errno == EPIPE ? .closed : .send(errno: errno) }
            done += n
        }
    }

    /// Reads until `marker` appears; returns the output up to and including
    /// it (the rest stays for the next read).
    public func read(until marker: String, timeout: Duration) throws(SerialConsoleClientError) -> [UInt8] {
        let needle = Array(marker.utf8)
        let deadline = monotonicNanoseconds() &+ UInt64(max(0, timeout.seconds) * 1e9)
        var searched = 0
        while true {
            if let range = buffer[searched...].firstRange(of: needle) {
                let text = Array(buffer[..<range.upperBound])
                buffer.removeSubrange(..<range.upperBound)
                return text
            }
            searched = max(0, buffer.count - needle.count + 1)
            let now = monotonicNanoseconds()
            guard now < deadline else {
                throw .timeout(marker: marker, tail: String(decoding: buffer.suffix(400), as: UTF8.self))
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(1000, (deadline - now) / 1_000_000 + 1)))
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .closed }
            buffer.append(contentsOf: chunk[..<n])
            if buffer.count > Self.bufferLimit {
                let dropped = buffer.count - Self.bufferLimit
                buffer.removeFirst(dropped)
                searched = max(0, searched - dropped)
            }
        }
    }
}
