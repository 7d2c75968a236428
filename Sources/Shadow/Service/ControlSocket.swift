import CShadow
import Glibc
import Guest

/// The Unix socket between `swvmm shadow --vm` and the swvmm that owns a VM:
/// where it lives, making it, reaching it, and moving one message (with fds)
/// across it. SOCK_SEQPACKET keeps message boundaries, so one packet is one
/// `ControlMessage`.
public enum ControlSocket {
    /// The access mode of the socket file: this user only (connect needs write).
    static let socketMode: mode_t = 0o600
    /// Connections waiting for their turn beyond the one being served.
    static let backlog: Int32 = 16
    /// sun_path's size, including the NUL (struct sockaddr_un, sys/un.h).
    static let pathCapacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)

    /// The directory default sockets live in: `$XDG_RUNTIME_DIR/swvmm`, or the
    /// user's `/tmp/swvmm-UID` (where the state files live) without one.
    public static func defaultDirectory(runtimeDirectory: String?) -> String {
        if let runtimeDirectory, runtimeDirectory.hasPrefix("/") { return runtimeDirectory + "/swvmm" }
        return ShadowStateFile.defaultDirectory()
    }

    /// The default socket of the VM run by process `pid`: one per VM.
    public static func defaultPath(runtimeDirectory: String?, pid: Int32 = getpid()) -> String {
        defaultDirectory(runtimeDirectory: runtimeDirectory) + "/vm-\(pid).sock"
    }

    /// Creates the default socket directory (mode 0700, this user's) if missing.
    public static func prepareDirectory(_ directory: String) throws {
        if let reason = preparePrivateDirectory(directory) {
            throw ControlError.directory(path: directory, reason: reason)
        }
    }

    /// Calls `body` with `path` as a Unix socket address.
    private static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) throws -> R {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < pathCapacity else { throw ControlError.pathTooLong(path: path, limit: pathCapacity - 1) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    private static func newSocket(path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlError.systemCall("socket for", path: path, errno: errno) }
        return fd
    }

    /// Connects to `path`; a missing, stale or forbidden socket becomes the
    /// matching `ControlError`.
    public static func connect(path: String) throws -> Int32 {
        let fd = try newSocket(path: path)
        let rc = try withAddress(path) { Glibc.connect(fd, $0, $1) }
        guard rc == 0 else {
            let error = errno
            close(fd)
            switch error {
            case ENOENT, ENOTDIR: throw ControlError.noSocket(path: path)
            case ECONNREFUSED: throw ControlError.staleSocket(path: path)
            default: throw ControlError.systemCall("connect to", path: path, errno: error)
            }
        }
        return fd
    }

    /// A listening socket bound at `path` (mode 0600). A stale socket there
    /// (nobody accepts on it: its swvmm is gone) is replaced; a live one is
    /// never taken (`socketInUse`); anything else there is left alone.
    /// Returns the fd and the bound file's identity (to remove only our own file).
    static func listen(path: String) throws -> (fd: Int32, identity: FileIdentity) {
        let fd = try newSocket(path: path)
        var done = false
        defer { if !done { close(fd) } }
        // The mode a bound socket file gets comes from the socket's inode
        // (net/unix/af_unix.c, unix_bind): set before bind, it is never wider.
        _ = fchmod(fd, socketMode)
        var rc = try withAddress(path) { bind(fd, $0, $1) }
        if rc != 0 && errno == EADDRINUSE {
            try removeStale(path: path)
            rc = try withAddress(path) { bind(fd, $0, $1) }
        }
        guard rc == 0 else { throw ControlError.systemCall("bind", path: path, errno: errno) }
        guard chmod(path, socketMode) == 0, Glibc.listen(fd, backlog) == 0, let identity = FileIdentity(path: path) else {
            let error = errno
            unlink(path)
            throw ControlError.systemCall("listen on", path: path, errno: error)
        }
        done = true
        return (fd, identity)
    }

    /// Removes the socket at `path` if it is this user's and nobody listens on it.
    private static func removeStale(path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw ControlError.notOurSocket(path: path, reason: "exists and is not a socket; not replacing it")
        }
        guard info.st_uid == getuid() else {
            throw ControlError.notOurSocket(path: path, reason: "a socket of uid \(info.st_uid); not replacing it")
        }
        do {
            close(try connect(path: path))
            throw ControlError.socketInUse(path: path)
        } catch ControlError.staleSocket {
            unlink(path)
        } catch ControlError.noSocket {
            // Gone meanwhile: bind again.
        }
    }

    /// The peer's pid and uid, as of its connect(2) (SO_PEERCRED).
    static func peer(of fd: Int32, path: String) throws -> (pid: Int32, uid: UInt32) {
        var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
        let rc = cshadow_peer_credentials(fd, &pid, &uid, &gid)
        guard rc == 0 else { throw ControlError.systemCall("SO_PEERCRED on", path: path, errno: -rc) }
        return (pid, uid)
    }

    /// Sends `message` with `fds` attached. A peer that went away is `serverGone`/EPIPE.
    static func send(_ message: ControlMessage, on fd: Int32, fds: [Int32] = [], path: String) throws {
        let bytes = try message.encoded()
        let n = bytes.withUnsafeBytes { raw in
            fds.withUnsafeBufferPointer { cshadow_send_message(fd, raw.baseAddress, raw.count, $0.baseAddress, Int32($0.count)) }
        }
        guard n == bytes.count else {
            throw ControlError.systemCall("sending to", path: path, errno: n < 0 ? Int32(-n) : EIO)
        }
    }

    /// What `receive` got: a message and the fds that came with it (owned by
    /// the caller), or the end of the connection, or nothing before the deadline.
    enum Received {
        case message(ControlMessage, fds: [Int32])
        case closed
        case timedOut
        /// `wake` became readable (the caller is told to stop).
        case woken
    }

    /// Waits up to `timeoutMilliseconds` (-1: no limit) for one message,
    /// returning early when `wake` (≥ 0) becomes readable. A malformed message
    /// throws; fds attached to a message that fails to parse are closed.
    static func receive(on fd: Int32, timeoutMilliseconds: Int32, wake: Int32 = -1, path: String) throws -> Received {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        while true {
            let n = poll(&fds, nfds_t(fds.count), timeoutMilliseconds)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw ControlError.systemCall("poll on", path: path, errno: errno) }
            if n == 0 { return .timedOut }
            if fds[1].revents != 0 { return .woken }
            break
        }
        var buffer = [UInt8](repeating: 0, count: ControlWire.maximumMessageSize)
        var received = [Int32](repeating: -1, count: ControlWire.maximumFds)
        var count: Int32 = 0
        let n = buffer.withUnsafeMutableBytes { raw in
            received.withUnsafeMutableBufferPointer {
                cshadow_recv_message(fd, raw.baseAddress, raw.count, $0.baseAddress, Int32($0.count), &count)
            }
        }
        if n == -Int(ECONNRESET) || n == 0 { return .closed }
        guard n > 0 else {
            if n == -Int(EMSGSIZE) { throw ControlError.protocolViolation("a message over \(ControlWire.maximumMessageSize) bytes or with too many fds") }
            throw ControlError.systemCall("receiving from", path: path, errno: Int32(-n))
        }
        let attached = Array(received.prefix(Int(count)))
        do {
            return .message(try ControlMessage.decode(Array(buffer.prefix(n))), fds: attached)
        } catch {
            attached.forEach { close($0) }
            throw error
        }
    }
}

/// A file's device and inode: which file a path named when it was made.
struct FileIdentity: Equatable {
    let device: UInt64
    let inode: UInt64

    init?(path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}
