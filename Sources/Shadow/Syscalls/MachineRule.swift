/// Who a machine call is about.
public enum MachineSubject: Equatable, Sendable {
    /// The whole machine (sethostname, sync, syslog).
    case machine
    /// A process named by a pid argument; 0 is the caller itself. With
    /// `negativeIsGroup` (kill), -N is process group N and -1 every process.
    case process(argument: Int, negativeIsGroup: Bool = false)
    /// A thread named by a tid argument (tkill).
    case thread(argument: Int)
    /// A process named by a pidfd argument.
    case pidfd(argument: Int)
    /// ptrace: argument `pid`, except PTRACE_TRACEME, which is the caller.
    case ptrace(request: Int, pid: Int)
    /// getpriority/setpriority/ioprio_*: argument `which` says whether `who`
    /// is a process (`processWhich`), a process group (`groupWhich`) or a
    /// user (every process of that user: always the machine); `who` 0 is the
    /// caller's own process or group.
    case whichWho(which: Int, who: Int, processWhich: UInt64, groupWhich: UInt64)
}

/// What a machine call does to its subject.
public enum MachineEffect: Equatable, Sendable {
    /// Reads: always the guest.
    case reads
    /// Changes: the guest with `--allow-writes`, EPERM otherwise.
    case changes
    /// Sends the signal in argument `signal`; signal 0 only asks whether the
    /// subject exists, which is a read.
    case signals(signal: Int)
    /// syslog(2): the action in argument 0 decides (see `SyslogAction`).
    case syslog
    /// Not redirected (no honest way to run it in the guest yet): EPERM
    /// unless it is about the inspector's own processes.
    case notRedirected(String)
}

/// How the supervisor treats a call of class `.machine`.
public struct MachineRule: Equatable, Sendable {
    public let subject: MachineSubject
    public let effect: MachineEffect

    public init(_ subject: MachineSubject, _ effect: MachineEffect) {
        self.subject = subject
        self.effect = effect
    }
}

/// syslog(2) actions, include/linux/syslog.h (SYSLOG_ACTION_*).
public enum SyslogAction {
    /// READ (2), READ_ALL (3), READ_CLEAR (4): fill the buffer in argument 1.
    public static let fillingBuffer: Set<UInt64> = [2, 3, 4]
    /// CLOSE (0), OPEN (1), READ_ALL (3), SIZE_UNREAD (9), SIZE_BUFFER (10)
    /// leave the log as it is; READ (2) consumes it, READ_CLEAR (4) and
    /// CLEAR (5) empty it, CONSOLE_OFF/ON/LEVEL (6, 7, 8) change the console.
    public static let reading: Set<UInt64> = [0, 1, 3, 9, 10]
}
