import Guest

/// One system call of a batch S runs in one guest transition.
///
/// An argument may be a back-reference: the raw result of an earlier call
/// of the same batch replaces it when S reaches this call (the fd an
/// `openat` returned, for the `read` and `close` after it). A failed call's
/// result (-errno) is substituted like any other: used as an fd it makes
/// the later calls fail with EBADF, which is what a batch that reads a file
/// that could not be opened should do.
public struct BatchedCall: Equatable, Sendable {
    /// The x86-64 system call number.
    public var number: Int
    /// Up to six raw arguments (missing ones are 0).
    public var arguments: [UInt64]
    /// Per argument index: how many calls back the call whose result
    /// replaces it is (1: the previous call). Absent: the literal argument.
    public var references: [Int: Int]

    public init(_ number: Int, _ arguments: [UInt64], references: [Int: Int] = [:]) {
        self.number = number
        self.arguments = arguments
        self.references = references
    }
}

/// The table S's stub reads a batch from (`ShadowStub`'s batch runner):
/// one 72-byte entry per call, little-endian: the number at 0, six arguments
/// at 8, one back-reference byte per argument at 56 (0: literal), the result
/// at 64, which S writes.
public enum BatchTable {
    public static let entrySize = 72
    static let argumentsOffset = 8
    static let referencesOffset = 56
    static let resultOffset = 64
    /// The farthest back a reference can reach (one byte).
    public static let maximumReference = 255

    /// Bytes of a table of `count` entries.
    public static func size(of count: Int) -> Int { count * entrySize }

    /// The table for `calls`; throws for a call the stub cannot express.
    public static func encode(_ calls: [BatchedCall]) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size(of: calls.count))
        for (index, call) in calls.enumerated() {
            guard call.number >= 0, call.arguments.count <= 6 else {
                throw ShadowError.badArgument("batched call \(index): number \(call.number), \(call.arguments.count) arguments")
            }
            let base = index * entrySize
            bytes.replaceSubrange(base ..< base + 8, with: le64(UInt64(call.number)))
            for (k, argument) in call.arguments.enumerated() {
                let at = base + argumentsOffset + 8 * k
                bytes.replaceSubrange(at ..< at + 8, with: le64(argument))
            }
            for (k, back) in call.references {
                guard k >= 0, k < 6, back >= 1, back <= min(index, maximumReference) else {
                    throw ShadowError.badArgument("batched call \(index): argument \(k) refers \(back) calls back")
                }
                bytes[base + referencesOffset + k] = UInt8(back)
            }
        }
        return bytes
    }

    /// The results S wrote into a table of `count` entries read back as `bytes`.
    public static func results(_ bytes: [UInt8], count: Int) throws -> [Int64] {
        guard bytes.count >= size(of: count) else {
            throw ShadowError.badArgument("batch table of \(bytes.count) bytes for \(count) entries")
        }
        return (0..<count).map { index in
            let at = index * entrySize + resultOffset
            return Int64(bitPattern: UInt64(littleEndianBytes: bytes[at ..< at + 8]))
        }
    }

    /// Runs `calls` one at a time through `executor.syscall`, substituting
    /// references as the stub would: for executors whose every call is a
    /// transition anyway.
    public static func runOneByOne(_ calls: [BatchedCall], on executor: GuestSyscallExecutor) throws -> [Int64] {
        var results: [Int64] = []
        for (index, call) in calls.enumerated() {
            var arguments = call.arguments + [UInt64](repeating: 0, count: max(0, 6 - call.arguments.count))
            for (k, back) in call.references {
                guard k >= 0, k < 6, back >= 1, back <= min(index, maximumReference) else {
                    throw ShadowError.badArgument("batched call \(index): argument \(k) refers \(back) calls back")
                }
                arguments[k] = UInt64(bitPattern: results[index - back])
            }
            results.append(try executor.syscall(call.number, arguments))
        }
        return results
    }
}
