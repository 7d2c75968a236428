import Glibc

/// The inspector naming itself in /proc.
///
/// `getpid` stays local (so an inspector's signals to itself still work), and
/// tools such as procps's `ps` then open `/proc/<that pid>/stat` to learn
/// about themselves. In the guest that pid names nothing, or some other
/// process. The inspector's guest-side self is S, so such paths become
/// `/proc/self/...`, which the guest kernel resolves to S.
enum InspectorSelfPath {
    /// `/proc/N` or `/proc/N/...` with N one of the task's own ids, as
    /// `/proc/self...`; nil otherwise. Byte by byte, and `ownIDs` is asked
    /// only when a number follows `/proc/`: this runs for every guest path.
    static func rewrite(_ absolute: String, ownIDs: () -> Set<Int32>) -> String? {
        var text = absolute
        return text.withUTF8 { bytes -> String? in
            let prefix = "/proc/".utf8
            guard bytes.count > prefix.count, zip(bytes, prefix).allSatisfy({ $0 == $1 }) else { return nil }
            var index = prefix.count, id: Int32 = 0
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                // No pid has ten digits (PID_MAX_LIMIT is 2^22), and procfs
                // takes no leading zero (fs/proc/util.c, name_to_int).
                let digits = index - prefix.count
                guard digits < 9, !(digits == 1 && id == 0) else { return nil }
                id = id * 10 + Int32(bytes[index] - UInt8(ascii: "0"))
                index += 1
            }
            guard index > prefix.count, index == bytes.count || bytes[index] == UInt8(ascii: "/"), ownIDs().contains(id) else { return nil }
            return "/proc/self" + String(decoding: UnsafeBufferPointer(rebasing: bytes[index...]), as: UTF8.self)
        }
    }

    /// The ids a task answers to: its own id and its thread group's.
    static func ownIDs(ofTask task: Int32) -> Set<Int32> {
        var ids: Set<Int32> = [task]
        if let group = InspectorFamily.threadGroup(of: task) { ids.insert(group) }
        return ids
    }
}
