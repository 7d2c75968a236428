import Glibc
import Guest

/// The inspector's own processes: its first process and every descendant,
/// read from /proc. A call about one of them concerns the inspector itself
/// and runs locally; anything else is the machine's.
///
/// Pid arguments are numbers in the caller's pid namespace; when the caller
/// is not in the supervisor's, they cannot be attributed and nothing is the
/// inspector's own (the safe side: the call is then the machine's).
struct InspectorFamily {
    /// The inspector's first process.
    let root: Int32
    /// The thread that made the call.
    let caller: Int32

    /// The longest parent chain walked (deeper trees are not the inspector's).
    static let maximumDepth = 4096

    /// Whether process or thread `pid` is the inspector or one of its descendants.
    func owns(_ pid: Int32) -> Bool {
        guard pid > 0, sharesPidNamespace, var current = Self.threadGroup(of: pid) else { return false }
        for _ in 0..<Self.maximumDepth {
            if current == root { return true }
            guard let parent = ProcessTree.parentPID(of: current), parent > 0 else { return false }
            current = parent
        }
        return false
    }

    /// Whether process group `group` exists and every member is the inspector's own.
    func ownsGroup(_ group: Int32) -> Bool {
        guard group > 0, sharesPidNamespace else { return false }
        let members = ProcessTree.members(ofGroup: group)
        return !members.isEmpty && members.allSatisfy(owns)
    }

    /// The caller's own process group.
    var callerGroup: Int32 { getpgid(caller) }

    /// The process a local pidfd in the caller names ("Pid:" in its fdinfo), if any.
    func pidfdTarget(_ fd: Int32) -> Int32? {
        guard let text = HostFile.text("/proc/\(caller)/fdinfo/\(fd)") else { return nil }
        return HostFile.field("Pid:", in: text)
    }

    private var sharesPidNamespace: Bool {
        guard let own = HostFile.link("/proc/self/ns/pid"), let theirs = HostFile.link("/proc/\(caller)/ns/pid") else { return false }
        return own == theirs
    }

    /// The thread group (process) of thread `tid`: its /proc status's
    /// `Tgid:`, what its getpid returns.
    static func threadGroup(of tid: Int32) -> Int32? {
        HostFile.text("/proc/\(tid)/status").flatMap { HostFile.field("Tgid:", in: $0) }
    }
}

