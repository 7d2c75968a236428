/// Paths as one run of bytes, matched component-wise against the paths an
/// inspector names. Routing runs for every path call, so it compares bytes
/// (what paths are to the kernel) with no allocation and no reference
/// counting; String's Unicode-aware `hasPrefix` was most of the supervisor's
/// own time per call.
struct PathPrefixSet: Equatable, Sendable {
    private var bytes: [UInt8] = []
    private var ranges: [Range<Int>] = []

    /// The set of `paths` (normalized ones: see `ShadowPolicy.normalize`).
    init(_ paths: [String]) {
        for path in paths {
            let start = bytes.count
            bytes.append(contentsOf: path.utf8)
            ranges.append(start ..< bytes.count)
        }
    }

    /// The byte length of the longest member that `path` is or is below, or -1.
    func longestMatch(_ path: UnsafeBufferPointer<UInt8>) -> Int {
        bytes.withUnsafeBufferPointer { all in
            var best = -1
            for range in ranges where range.count > best && Self.isWithin(path, UnsafeBufferPointer(rebasing: all[range])) {
                best = range.count
            }
            return best
        }
    }

    /// Whether `path` is `prefix` or below it, by whole components.
    static func isWithin(_ path: UnsafeBufferPointer<UInt8>, _ prefix: UnsafeBufferPointer<UInt8>) -> Bool {
        let slash = UInt8(ascii: "/")
        guard path.count >= prefix.count else { return false }
        for index in 0 ..< prefix.count where path[index] != prefix[index] { return false }
        if prefix.count == 1 && prefix[0] == slash { return true }
        return path.count == prefix.count || path[prefix.count] == slash
    }
}
