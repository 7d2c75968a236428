/// How a run of the machine ended, and the exit status the swvmm command
/// turns it into (documented in `swvmm --help` and the README).
public enum MachineOutcome: CustomStringConvertible, Sendable {
    /// The guest reset the machine (i8042 reset, as `reboot=k` does) or powered off.
    case guestStopped(String)
    /// The user pressed the console escape (Ctrl-A x), or swvmm got a stop signal; says which.
    case stoppedByUser(String)
    /// The guest crashed the virtual CPU (triple fault, failed entry, internal error).
    case guestFailed(FailureReport)
    /// The guest reached an instruction this host's KVM cannot emulate, on a
    /// host without hardware virtualization: the platform's limit, not a guest bug.
    case platformLimit(FailureReport)
    /// swvmm itself failed while the guest ran (a KVM ioctl error, a thread that could not start).
    case hostError(String)

    /// The process exit status for this outcome.
    public var exitStatus: Int32 {
        switch self {
        case .guestStopped, .stoppedByUser: return ExitStatus.success
        case .hostError: return ExitStatus.failure
        case .guestFailed: return ExitStatus.guestFailed
        case .platformLimit: return ExitStatus.platformLimit
        }
    }

    public var description: String {
        switch self {
        case let .guestStopped(how): return "guest stopped: \(how)"
        case let .stoppedByUser(how): return "stopped: \(how)"
        case let .guestFailed(report): return report.description
        case let .platformLimit(report): return report.description + "\n" + HostPlatform.emulationLimitExplanation
        case let .hostError(message): return "swvmm failed: \(message)"
        }
    }
}

/// swvmm's exit statuses, one meaning each.
public enum ExitStatus {
    /// The guest stopped itself (reset, power-off) or the user quit.
    public static let success: Int32 = 0
    /// swvmm could not start or run the machine: bad input, no KVM, a host error.
    public static let failure: Int32 = 1
    /// The guest crashed its vCPU: triple fault, failed VM entry, KVM internal error.
    public static let guestFailed: Int32 = 2
    /// The guest needed an instruction this host's KVM cannot emulate (no VT-x/AMD-V).
    public static let platformLimit: Int32 = 3
    /// Command-line usage error (swift-argument-parser's EX_USAGE, sysexits.h).
    public static let usage: Int32 = 64
}
