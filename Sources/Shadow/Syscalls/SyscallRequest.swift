/// One trapped system call, as the supervisor sees it.
public struct SyscallRequest: Equatable, Sendable {
    /// System call number (x86_64).
    public var number: Int
    /// The six raw arguments.
    public var arguments: [UInt64]
    /// Thread that made the call (its memory is the inspector's).
    public var pid: Int32

    public init(number: Int, arguments: [UInt64], pid: Int32) {
        self.number = number
        self.arguments = Array((arguments + [UInt64](repeating: 0, count: 6)).prefix(6))
        self.pid = pid
    }

    /// Argument `i` as the kernel reads an `int`.
    func int32(_ i: Int) -> Int32 { Int32(truncatingIfNeeded: arguments[i]) }
}

/// How the supervisor answers one call.
public enum SyscallReply: Equatable, Sendable {
    /// Let the inspector's own kernel run it (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
    case continueLocally
    /// Return this value (≥ 0).
    case value(Int64)
    /// Fail with this errno.
    case error(Int32)
}

/// The inspector's working directory, as far as routing is concerned.
public enum InspectorCwd: Equatable, Sendable {
    /// The inspector's own (read from /proc/PID/cwd when needed).
    case local
    /// A guest directory it chdir'ed into (absolute, normalized); the local
    /// cwd is unchanged underneath.
    case guest(String)
}

/// Bump allocator over the guest region for one call.
struct RegionCursor {
    let base: UInt64
    let size: Int
    private(set) var used = 0

    init(base: UInt64, size: Int) {
        self.base = base
        self.size = max(size, 0)
    }

    /// Bytes still free.
    var remaining: Int { size - used }

    /// Reserves `count` bytes aligned to 8; returns the offset.
    mutating func reserve(_ count: Int) throws -> Int {
        let aligned = (used + 7) & ~7
        guard count >= 0, aligned <= size, count <= size - aligned else {
            throw SupervisorError.regionExhausted(needed: count, available: max(0, size - aligned))
        }
        used = aligned + count
        return aligned
    }

    /// Guest address of `offset`.
    func address(_ offset: Int) -> UInt64 { base &+ UInt64(offset) }
}
