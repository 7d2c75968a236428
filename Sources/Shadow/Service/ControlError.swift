import Glibc
import Guest

/// What can go wrong between `swvmm shadow --vm` and the VM's swvmm. Each
/// case's `description` is the line a human reads after "swvmm: ".
public enum ControlError: Error, Equatable, CustomStringConvertible {
    /// Nothing at `path` (no VM with --shadow there, or a mistyped path).
    case noSocket(path: String)
    /// A socket file nobody listens on: its swvmm has exited.
    case staleSocket(path: String)
    /// Another swvmm is serving `path`; it is never taken over.
    case socketInUse(path: String)
    /// `path` exists and is not a socket, or is not this user's.
    case notOurSocket(path: String, reason: String)
    /// `path` is longer than a Unix socket address holds.
    case pathTooLong(path: String, limit: Int)
    /// The private directory for the default socket path cannot be used.
    case directory(path: String, reason: String)
    /// A system call on the socket failed.
    case systemCall(String, path: String, errno: Int32)
    /// The other side belongs to another user.
    case otherUser(path: String, peerUID: UInt32)
    /// The server refused this run; the text is its reason (no executor, bad request, ...).
    case refused(path: String, reason: String)
    /// The server ended the run early; the text is its reason.
    case serverFailed(path: String, reason: String)
    /// The server closed the connection or stopped answering while a run was on.
    case serverGone(path: String, during: String)
    /// The peer sent something this swvmm does not accept.
    case protocolViolation(String)
    /// The peer speaks another protocol version.
    case versionMismatch(peer: UInt16)
    /// A message to send would break the protocol's bounds.
    case tooLarge(String)
    /// The run was cancelled (a stop signal) before the inspector started.
    case cancelled

    public var description: String {
        switch self {
        case let .noSocket(path):
            return "no socket at \(path): is a swvmm VM running with --shadow?"
        case let .staleSocket(path):
            return "nothing listens at \(path): the swvmm that made it has exited (a stale socket)"
        case let .socketInUse(path):
            return "\(path) is the live control socket of another swvmm; give another --api-socket"
        case let .notOurSocket(path, reason):
            return "\(path): \(reason)"
        case let .pathTooLong(path, limit):
            return "socket path \(path) is longer than \(limit) bytes"
        case let .directory(path, reason):
            return "socket directory \(path): \(reason)"
        case let .systemCall(what, path, e):
            return "\(what) \(path): \(errnoText(e))"
        case let .otherUser(path, uid):
            return "\(path) belongs to uid \(uid), not to this user (uid \(getuid())): refused"
        case let .refused(path, reason):
            return "the VM at \(path) cannot run the command: \(reason)"
        case let .serverFailed(path, reason):
            return "the VM at \(path) ended the run: \(reason)"
        case let .serverGone(path, during):
            return "the swvmm serving \(path) went away \(during)"
        case let .protocolViolation(what):
            return "control protocol violation: \(what)"
        case let .versionMismatch(peer):
            return "the other side speaks control protocol version \(peer); this swvmm speaks \(ControlWire.version)"
        case let .tooLarge(what):
            return "too large for the control protocol: \(what)"
        case .cancelled:
            return "cancelled before the command started"
        }
    }
}
