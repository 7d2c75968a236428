import Glibc

/// Where a GDB stub listens, as written on the command line:
/// `unix:PATH` (QEMU's `-gdb unix:PATH,server=on,wait=off`) or `tcp:HOST:PORT`.
public enum GDBRemoteAddress: Equatable, CustomStringConvertible {
    case unix(path: String)
    case tcp(host: String, port: UInt16)

    /// Parses `unix:PATH` or `tcp:HOST:PORT` (HOST may be `[v6]`).
    public init(parsing text: String) throws {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { throw GDBRemoteError.badAddress(text, reason: "empty socket path") }
            // sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
            guard path.utf8.count < 108 else { throw GDBRemoteError.badAddress(text, reason: "socket path longer than 107 bytes") }
            guard !path.utf8.contains(0) else { throw GDBRemoteError.badAddress(text, reason: "NUL in socket path") }
            self = .unix(path: path)
        } else if text.hasPrefix("tcp:") {
            let rest = text.dropFirst(4)
            guard let colon = rest.lastIndex(of: ":") else { throw GDBRemoteError.badAddress(text, reason: "missing :PORT") }
            var host = String(rest[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { throw GDBRemoteError.badAddress(text, reason: "empty host") }
            guard let port = UInt16(rest[rest.index(after: colon)...]), port != 0 else {
                throw GDBRemoteError.badAddress(text, reason: "port must be 1-65535")
            }
            self = .tcp(host: host, port: port)
        } else {
            throw GDBRemoteError.badAddress(text, reason: "unknown scheme")
        }
    }

    public var description: String {
        switch self {
        case let .unix(path): return "unix:\(path)"
        case let .tcp(host, port): return host.contains(":") ? "tcp:[\(host)]:\(port)" : "tcp:\(host):\(port)"
        }
    }
}

/// A connected stream socket to a GDB stub. Owns its file descriptor; every
/// wait is bounded by poll(2) and ends early when `cancellation` is cancelled.
public final class Connection {
    private var fd: Int32
    private let cancellation: Cancellation?

    /// Connects to `address`, giving up after `timeout` seconds or when `cancellation` is cancelled.
    public init(to address: GDBRemoteAddress, timeout: Double, cancellation: Cancellation? = nil) throws {
        self.cancellation = cancellation
        switch address {
        case let .unix(path):
            fd = try Connection.connectUnix(path: path, address: address, timeout: timeout, cancellation: cancellation)
        case let .tcp(host, port):
            fd = try Connection.connectTCP(host: host, port: port, address: address, timeout: timeout, cancellation: cancellation)
        }
    }

    /// Takes ownership of an already connected stream socket (tests use a socketpair).
    public init(adopting fd: Int32, cancellation: Cancellation? = nil) throws {
        self.fd = fd
        self.cancellation = cancellation
        try Connection.makeNonBlocking(fd)
    }

    deinit { close() }

    /// Closes the socket. Idempotent.
    public func close() {
        if fd >= 0 { _ = Glibc.close(fd); fd = -1 }
    }

    public var isOpen: Bool { fd >= 0 }

    /// Writes all of `bytes` before `deadline`.
    func send(_ bytes: [UInt8], deadline: Deadline, what: String) throws {
        guard fd >= 0 else { throw GDBRemoteError.notConnected }
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n > 0 { sent += n; continue }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK {
                try wait(for: Int16(POLLOUT), deadline: deadline, what: what)
                continue
            }
            if code == EPIPE || code == ECONNRESET { throw GDBRemoteError.closed(while: what) }
            throw GDBRemoteError.system(operation: "send", errno: code)
        }
    }

    /// Reads at least one byte (at most `limit`) before `deadline`.
    func receive(limit: Int, deadline: Deadline, what: String) throws -> [UInt8] {
        guard fd >= 0 else { throw GDBRemoteError.notConnected }
        var buffer = [UInt8](repeating: 0, count: max(1, limit))
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { return Array(buffer[0..<n]) }
            if n == 0 { throw GDBRemoteError.closed(while: what) }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK {
                try wait(for: Int16(POLLIN), deadline: deadline, what: what)
                continue
            }
            if code == ECONNRESET { throw GDBRemoteError.closed(while: what) }
            throw GDBRemoteError.system(operation: "recv", errno: code)
        }
    }

    private func wait(for events: Int16, deadline: Deadline, what: String) throws {
        try Connection.poll(fd, for: events, deadline: deadline, cancellation: cancellation, what: what)
    }

    /// Waits until `fd` has `events` (or hung up): throws `timeout` at the
    /// deadline, stating the whole wait, and `cancelled` once `cancellation` is.
    private static func poll(_ fd: Int32, for events: Int16, deadline: Deadline, cancellation: Cancellation?,
                             what: String) throws {
        var fds = [pollfd(fd: fd, events: events, revents: 0),
                   pollfd(fd: cancellation?.fd ?? -1, events: Int16(POLLIN), revents: 0)]
        while true {
            let n = Glibc.poll(&fds, nfds_t(fds.count), deadline.remainingMilliseconds)
            if n < 0 {
                if errno == EINTR { continue }
                throw GDBRemoteError.system(operation: "poll", errno: errno)
            }
            if fds[1].revents != 0 { throw GDBRemoteError.cancelled(while: what) }
            if n > 0 { return }  // readable, writable, or hung up: the next call says which
            throw GDBRemoteError.timeout(waitingFor: what, seconds: deadline.seconds)
        }
    }

    // MARK: connecting

    private static func makeNonBlocking(_ fd: Int32) throws {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw GDBRemoteError.system(operation: "fcntl(O_NONBLOCK)", errno: errno)
        }
    }

    private static func hint(for code: Int32) -> String {
        switch code {
        case ENOENT: return "no socket at that path (is QEMU running with -gdb unix:PATH,server=on?)"
        case ECONNREFUSED: return "nothing is listening there (QEMU not started with -gdb, or already exited)"
        case EACCES: return "permission denied on the socket"
        case ETIMEDOUT: return "the connection attempt timed out"
        default: return "check the address"
        }
    }

    /// Connects a non-blocking socket and waits for completion with poll(2).
    private static func finishConnect(fd: Int32, result: Int32, address: GDBRemoteAddress, timeout: Double,
                                      cancellation: Cancellation?) throws {
        if result == 0 { return }
        let code = errno
        guard code == EINPROGRESS || code == EAGAIN else {
            throw GDBRemoteError.connectFailed(address: address.description, errno: code, hint: hint(for: code))
        }
        do {
            try poll(fd, for: Int16(POLLOUT), deadline: Deadline(seconds: timeout), cancellation: cancellation,
                     what: "the connection to \(address)")
        } catch GDBRemoteError.timeout {
            throw GDBRemoteError.connectFailed(address: address.description, errno: ETIMEDOUT,
                                               hint: "no answer within \(Deadline(seconds: timeout).seconds) s")
        }
        var soError: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length) == 0 else {
            throw GDBRemoteError.system(operation: "getsockopt(SO_ERROR)", errno: errno)
        }
        if soError != 0 {
            throw GDBRemoteError.connectFailed(address: address.description, errno: soError, hint: hint(for: soError))
        }
    }

    private static func connectUnix(path: String, address: GDBRemoteAddress, timeout: Double,
                                    cancellation: Cancellation?) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw GDBRemoteError.system(operation: "socket(AF_UNIX)", errno: errno) }
        do {
            try makeNonBlocking(fd)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                for (i, b) in bytes.enumerated() where i < raw.count - 1 { raw[i] = b }
            }
            let result = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            try finishConnect(fd: fd, result: result, address: address, timeout: timeout, cancellation: cancellation)
            return fd
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    private static func connectTCP(host: String, port: UInt16, address: GDBRemoteAddress, timeout: Double,
                                   cancellation: Cancellation?) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            let reason = rc == 0 ? "no addresses" : String(cString: gai_strerror(rc))
            throw GDBRemoteError.badAddress(address.description, reason: "cannot resolve host: \(reason)")
        }
        defer { freeaddrinfo(list) }
        var lastError: Error = GDBRemoteError.connectFailed(address: address.description, errno: ECONNREFUSED, hint: hint(for: ECONNREFUSED))
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
            guard fd >= 0 else { lastError = GDBRemoteError.system(operation: "socket", errno: errno); continue }
            do {
                try makeNonBlocking(fd)
                var one: Int32 = 1
                // Small request/reply packets: do not let Nagle delay them.
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                let result = Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen)
                try finishConnect(fd: fd, result: result, address: address, timeout: timeout, cancellation: cancellation)
                return fd
            } catch {
                Glibc.close(fd)
                lastError = error
            }
        }
        throw lastError
    }
}
