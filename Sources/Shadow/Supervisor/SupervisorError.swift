import Guest
import Glibc

/// Why the supervisor, or one redirected call, failed.
public enum SupervisorError: Error, Equatable, CustomStringConvertible {
    /// The command could not be started (`stage` says which step; errno).
    case cannotRun(command: String, stage: String, errno: Int32)
    /// A system call the supervisor itself makes failed.
    case systemCall(String, errno: Int32)
    /// Reading or writing the inspector's memory failed.
    case inspectorMemory(address: UInt64, count: Int, errno: Int32)
    /// The inspector passed a path longer than PATH_MAX or without a NUL.
    case pathTooLong(address: UInt64)
    /// A buffer does not fit in the guest region.
    case regionExhausted(needed: Int, available: Int)
    /// The guest returned something impossible for the call (hostile or broken).
    case guestResultOutOfRange(call: String, result: Int64, limit: Int64)
    /// The guest executor failed (transport, guest gone).
    case executor(String)
    /// A configuration value is unusable.
    case badConfiguration(String)
    /// The notification vanished (the inspector thread died or was interrupted).
    case notificationGone

    public var description: String {
        switch self {
        case .cannotRun(let command, let stage, let e):
            return stage == "exec" ? "cannot run \(command): \(errnoText(e))"
                                   : "cannot run \(command): \(stage): \(errnoText(e))"
        case .systemCall(let what, let e): return "\(what): \(errnoText(e))"
        case .inspectorMemory(let address, let count, let e):
            return "inspector memory at \(address.guestHex) (\(count) bytes): \(errnoText(e))"
        case .pathTooLong(let address): return "inspector path at \(address.guestHex) exceeds PATH_MAX"
        case .regionExhausted(let needed, let available):
            return "guest region exhausted: need \(needed) bytes, \(available) left"
        case .guestResultOutOfRange(let call, let result, let limit):
            return "guest returned \(result) for \(call), outside 0...\(limit)"
        case .executor(let message): return "guest executor: \(message)"
        case .badConfiguration(let message): return "bad configuration: \(message)"
        case .notificationGone: return "notification no longer valid"
        }
    }

    /// The errno the inspector sees when this error ends its call.
    var inspectorErrno: Int32 {
        switch self {
        case .inspectorMemory: return EFAULT
        case .pathTooLong: return ENAMETOOLONG
        case .regionExhausted: return ENOMEM
        default: return EIO
        }
    }
}

