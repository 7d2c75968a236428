/// Everything that can go wrong creating, finding or using the shadow process.
/// Each case carries the context needed to act on it; `description` is the
/// message for a human.
public enum ShadowError: Error, Equatable, CustomStringConvertible {
    /// The IDT or its page-fault gate cannot be used (not present, wrong type, out of the limit).
    case badPageFaultGate(idtBase: UInt64, reason: String)
    /// No page fault from user mode (or no stop at its rip) within `seconds`.
    case noUserContext(seconds: Double, detail: String)
    /// No `syscall` instruction at an instruction boundary was found in the borrowed process.
    case noSyscallSite(pid: Int64?, detail: String)
    /// An injected call did not come back to the breakpoint within `seconds`.
    case injectionTimedOut(call: String, seconds: Double)
    /// An injected call returned an error (`errno`) during the bootstrap.
    case injectedCallFailed(call: String, errno: Int64)
    /// The guest or the connection to it ended.
    case guestGone(during: String)
    /// The guest stopped for a reason that is not a breakpoint of ours.
    case unexpectedStop(during: String, vcpu: Int, reason: String)
    /// S did not reach its trap point within `seconds` (killed, or the guest hangs).
    case shadowNotResponding(pid: Int64, seconds: Double)
    /// The bytes of S's stub differ from what was written (someone changed S).
    case stubModified(pid: Int64, address: UInt64)
    /// S stopped at its trap point with registers that are not S's stub's.
    case wrongContext(expected: String, found: String)
    /// A saved S is no longer valid (dead, replaced, cookie mismatch...).
    case stale(pid: Int64, reason: String)
    /// A region access outside `[0, size)`.
    case regionOutOfBounds(offset: Int, count: Int, size: Int)
    /// A bad argument from the caller (too many syscall arguments, bad config...).
    case badArgument(String)
    /// The state file could not be read or written.
    case stateFile(path: String, reason: String)

    public var description: String {
        switch self {
        case let .badPageFaultGate(base, reason):
            return "cannot use the page-fault gate of the IDT at \(base.guestHex): \(reason)"
        case let .noUserContext(seconds, detail):
            return "found no user-mode context to borrow within \(seconds) s (\(detail)); the guest needs some user-space activity"
        case let .noSyscallSite(pid, detail):
            return "no syscall instruction usable in the borrowed process\(pid.map { " (pid \($0))" } ?? ""): \(detail)"
        case let .injectionTimedOut(call, seconds):
            return "the injected \(call) did not return within \(seconds) s"
        case let .injectedCallFailed(call, errno):
            return "the injected \(call) failed in the guest with errno \(errno)"
        case let .guestGone(during):
            return "the guest (or its debug connection) went away during \(during)"
        case let .unexpectedStop(during, vcpu, reason):
            return "the guest stopped unexpectedly (vCPU \(vcpu): \(reason)) during \(during)"
        case let .shadowNotResponding(pid, seconds):
            return "shadow process S (pid \(pid)) did not come back to its trap point within \(seconds) s: it was killed, or the guest hangs"
        case let .stubModified(pid, address):
            return "the stub of shadow process S (pid \(pid)) at \(address.guestHex) was modified"
        case let .wrongContext(expected, found):
            return "stopped at the shadow trap point in the wrong context: expected \(expected), found \(found)"
        case let .stale(pid, reason):
            return "the saved shadow process (pid \(pid)) is no longer valid: \(reason)"
        case let .regionOutOfBounds(offset, count, size):
            return "region access of \(count) bytes at offset \(offset) is outside the \(size)-byte region"
        case let .badArgument(text):
            return "bad argument: \(text)"
        case let .stateFile(path, reason):
            return "shadow state file \(path): \(reason)"
        }
    }
}
