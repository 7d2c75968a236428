import Glibc

/// The processes descended from one process, read from /proc (parent links in
/// /proc/PID/stat; /proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN,
/// which not every host kernel has).
enum ProcessTree {
    /// How often a caller re-walks a tree it is freezing before giving up on
    /// it growing (each walk stops what it found, so it settles in one or two).
    static let maximumWalks = 8

    /// Living descendants of `root`, not `root` itself. A snapshot: processes
    /// may fork or exit meanwhile, so callers that kill repeat the walk.
    static func descendants(of root: Int32) -> [Int32] {
        var childrenByParent: [Int32: [Int32]] = [:]
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = Int32(name), let parent = parentPID(of: pid) else { continue }
            childrenByParent[parent, default: []].append(pid)
        }
        var result: [Int32] = [], queue = [root], seen: Set<Int32> = [root]
        while let next = queue.popLast() {
            for child in childrenByParent[next] ?? [] where seen.insert(child).inserted {
                result.append(child)
                queue.append(child)
            }
        }
        return result
    }

    /// The processes in process group `group` (a snapshot).
    static func members(ofGroup group: Int32) -> [Int32] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        var result: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let pid = Int32(name), statField(2, of: pid) == group { result.append(pid) }
        }
        return result
    }

    /// The parent pid in /proc/PID/stat.
    static func parentPID(of pid: Int32) -> Int32? { statField(1, of: pid) }

    /// Numeric field `index` after the command name in /proc/PID/stat (0 is
    /// the state, 1 the parent, 2 the process group); the name ends at the
    /// last ')' (it may contain spaces and parens).
    static func statField(_ index: Int, of pid: Int32) -> Int32? {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0, let close = buffer[0..<count].lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = buffer[(close + 1)..<count].split(separator: UInt8(ascii: " "))
        guard fields.count > index else { return nil }
        return Int32(String(decoding: fields[index], as: UTF8.self))
    }
}
