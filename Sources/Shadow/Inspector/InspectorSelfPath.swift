import Glibc

/// The inspector naming itself in /proc.
///
/// `getpid` stays local (so an inspector's signals to itself still work), and
/// tools such as procps's `ps` then open `/proc/<that pid>/stat` to learn
/// about themselves. In the guest that pid names nothing, or some other
/// process. The inspector's guest-side self is S, so such paths become
/// `/proc/self/...`, which the guest kernel resolves to S.
enum InspectorSelfPath {
    /// `/proc/N` or `/proc/N/...` with N one of `ownIDs`, as `/proc/self...`; nil otherwise.
    static func rewrite(_ absolute: String, ownIDs: Set<Int32>) -> String? {
        let prefix = "/proc/"
        guard absolute.hasPrefix(prefix) else { return nil }
        let rest = absolute.dropFirst(prefix.count)
        let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, let id = Int32(digits), ownIDs.contains(id) else { return nil }
        let tail = rest.dropFirst(digits.count)
        guard tail.isEmpty || tail.hasPrefix("/") else { return nil }
        return prefix + "self" + tail
    }

    /// The ids a task answers to: its own id and its thread group's (from
    /// `/proc/TID/status`, whose `Tgid:` line is what its getpid returns).
    static func ownIDs(ofTask task: Int32) -> Set<Int32> {
        var ids: Set<Int32> = [task]
        let fd = open("/proc/\(task)/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return ids }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024) // Tgid is the fourth line
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return ids }
        for line in String(decoding: buffer[0..<count], as: UTF8.self).split(separator: "\n") where line.hasPrefix("Tgid:") {
            if let tgid = Int32(line.dropFirst("Tgid:".count).filter(\.isNumber)) { ids.insert(tgid) }
        }
        return ids
    }
}
