import Glibc

/// Why a call runs locally, untrapped: it concerns only the inspector itself.
public enum LocalReason: String, Sendable, CaseIterable {
    case memory = "the inspector's own memory"
    case signals = "the inspector's own signal handlers, masks and waits"
    case processes = "creates, runs, waits for or ends the inspector's own processes"
    case threads = "futexes, robust lists and rseq of the inspector's own threads"
    case credentials = "the inspector's own credentials, limits, namespaces, filters or personality"
    case scheduling = "yields or asks about the CPU the inspector runs on"
    case clock = "reads the clock, sleeps or arms the inspector's own timers"
    case localFds = "makes or uses local fds only; a guest fd's local placeholder is a write-only /dev/null"
    case network = "the host's network, which is the inspector's"
}

/// Where one x86-64 system call goes, by design.
///
/// The filter traps every call that is not `.local`; the supervisor answers
/// `.refused` and unknown numbers itself and never lets them run locally.
public enum SyscallClass: Equatable, Sendable {
    /// Runs locally and is never trapped.
    case local(LocalReason)
    /// Follows its path or fd: described in `SyscallSpecTable` (guest paths and
    /// fds go to the guest; the inspector's own files stay local).
    case routed
    /// Acts on or reads the machine, or another process: described in
    /// `SyscallSpecTable` with a `MachineRule`. Reads go to the guest; changes
    /// go to the guest with `--allow-writes` and are refused with EPERM
    /// otherwise; calls about the inspector's own processes run locally.
    case machine
    /// Answered with this errno, never run (the reason is said with `--verbose`).
    case refused(Int32, String)
}

/// One row of the x86-64 system call table.
public struct SyscallEntry: Sendable {
    public let number: Int
    public let name: String
    public let callClass: SyscallClass

    init(_ number: Int, _ name: String, _ callClass: SyscallClass) {
        self.number = number
        self.name = name
        self.callClass = callClass
    }
}

/// Every x86-64 system call number, arch/x86/entry/syscalls/syscall_64.tbl
/// (common and 64-bit entries, 0 through 462; 335...423 are unassigned on
/// x86-64). A number not in the table is unknown: trapped and answered ENOSYS.
public enum SyscallClassTable {
    /// The rows, by number.
    public static let byNumber: [Int: SyscallEntry] = {
        var table: [Int: SyscallEntry] = [:]
        for entry in entriesBelow200 + entriesFrom200 { table[entry.number] = entry }
        return table
    }()

    /// The highest number in the table; anything above is unknown.
    public static let highestNumber = byNumber.keys.max() ?? 0

    /// The class of `number` (unknown numbers: refused with ENOSYS).
    public static func callClass(of number: Int) -> SyscallClass {
        byNumber[number]?.callClass ?? .refused(ENOSYS, "unknown to the policy")
    }
}
