import Guest
import Glibc

/// Everything that can go wrong talking to a GDB stub. Each case carries the
/// context needed to act on it; `description` is the message for a human.
public enum GDBRemoteError: Error, Equatable, CustomStringConvertible {
    /// The `--gdb` address is not `unix:PATH` or `tcp:HOST:PORT`.
    case badAddress(String, reason: String)
    /// A socket call failed (`operation` names it; `errno` is its error).
    case system(operation: String, errno: Int32)
    /// Connecting failed: nothing listens there, or the peer refused.
    case connectFailed(address: String, errno: Int32, hint: String)
    /// The peer sent nothing (or no complete packet) within `seconds`.
    case timeout(waitingFor: String, seconds: Double)
    /// The wait was ended on purpose (`Cancellation.cancel()`, e.g. on Ctrl-C).
    case cancelled(while: String)
    /// The peer closed the connection.
    case closed(while: String)
    /// The peer sent bytes that are not the GDB remote protocol.
    case garbage(String)
    /// A packet body exceeded `limit` bytes (before or after run-length decoding).
    case packetTooLarge(limit: Int)
    /// The peer kept failing checksums (or NACKing ours) `attempts` times.
    case checksumFailures(attempts: Int)
    /// The peer answered `request` with an error packet `Enn`.
    case errorReply(request: String, code: Int)
    /// The peer answered `request` with the empty packet: it does not support it.
    case unsupported(request: String)
    /// The peer's answer to `request` was well framed but did not make sense.
    case badReply(request: String, reply: String)
    /// The target description (target.xml and its includes) is unusable.
    case badTargetDescription(String)
    /// The stub does not describe a register shadow context needs.
    case missingRegister(String)
    /// The client was detached or closed and cannot be used any more.
    case notConnected
    /// The stream broke earlier (`cause`: the stub closed it, a timeout...),
    /// so nothing more can be asked of the stub.
    indirect case broken(by: GDBRemoteError)
    /// A call needs the guest stopped but it is running (or the reverse).
    case wrongState(String)

    public var description: String {
        switch self {
        case let .badAddress(text, reason):
            return "bad GDB stub address '\(text)': \(reason) (expected unix:PATH or tcp:HOST:PORT)"
        case let .system(operation, code):
            return "\(operation) failed: \(errnoText(code))"
        case let .connectFailed(address, code, hint):
            return "cannot connect to GDB stub at \(address): \(errnoText(code)); \(hint)"
        case let .timeout(what, seconds):
            return "no answer from the GDB stub within \(seconds) s while waiting for \(what)"
        case let .cancelled(what):
            return "stopped on request while waiting for \(what)"
        case let .closed(what):
            return "the GDB stub closed the connection while \(what)"
        case let .garbage(detail):
            return "the peer does not speak the GDB remote protocol: \(detail)"
        case let .packetTooLarge(limit):
            return "the GDB stub sent a packet larger than the \(limit)-byte limit"
        case let .checksumFailures(attempts):
            return "packets kept failing their checksum (\(attempts) attempts): the link is corrupting data"
        case let .errorReply(request, code):
            return "the GDB stub answered '\(request)' with error E\(hex(code, width: 2))"
        case let .unsupported(request):
            return "the GDB stub does not support '\(request)' (empty reply)"
        case let .badReply(request, reply):
            return "unexpected answer to '\(request)': '\(reply)'"
        case let .badTargetDescription(detail):
            return "unusable target description: \(detail)"
        case let .missingRegister(name):
            return "the GDB stub does not describe register '\(name)'"
        case .notConnected:
            return "the GDB remote client is detached or closed"
        case let .broken(cause):
            return "the connection to the GDB stub is gone (\(cause))"
        case let .wrongState(detail):
            return detail
        }
    }
}

/// Shortens peer-supplied text for error messages (the peer is untrusted).
func excerpt(_ bytes: some Collection<UInt8>, limit: Int = 80) -> String {
    var text = ""
    for byte in bytes.prefix(limit) {
        if byte >= 0x20 && byte < 0x7F { text.unicodeScalars.append(Unicode.Scalar(byte)) } else { text += "\\x" + hex(byte, width: 2) }
    }
    if bytes.count > limit { text += "..." }
    return text
}
