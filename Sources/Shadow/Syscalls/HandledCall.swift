/// What became of one trapped call, as the supervisor counts it.
public enum SyscallOutcome: Equatable, Sendable {
    /// Not a call for the guest: the inspector's own kernel runs it.
    case continuedLocally
    /// Answered by the guest (a close of a guest fd too, which then
    /// continues locally to close the placeholder).
    case redirected
    /// Refused by the supervisor (policy, or not redirectable for a guest fd).
    case refused
    /// Failed before the guest answered: an error reading the inspector's
    /// memory, the notification gone, or the executor broken.
    case failed
}

/// The answer to one trapped call and what it was.
public struct HandledCall: Equatable, Sendable {
    /// What to tell the kernel; a guest fd the call opened is installed already.
    public var reply: SyscallReply
    public var outcome: SyscallOutcome
}
