import Glibc

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
        guard let text = Self.readSmallFile("/proc/\(caller)/fdinfo/\(fd)") else { return nil }
        return Self.field("Pid:", in: text)
    }

    private var sharesPidNamespace: Bool {
        guard let own = Self.link("/proc/self/ns/pid"), let theirs = Self.link("/proc/\(caller)/ns/pid") else { return false }
        return own == theirs
    }

    /// The thread group (process) of thread `tid`.
    static func threadGroup(of tid: Int32) -> Int32? {
        readSmallFile("/proc/\(tid)/status").flatMap { field("Tgid:", in: $0) }
    }

    static func field(_ name: String, in text: String) -> Int32? {
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            return Int32(line.dropFirst(name.count).trimmingCharacters(in: " \t"))
        }
        return nil
    }

    static func link(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 128)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }
}

private extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return s
    }
}
