import CShadow
import Glibc

/// A stand-in `GuestSyscallExecutor` for tests and benchmarks: it runs each
/// call on the HOST, in this process, with Glibc's `syscall`, and its
/// "region" is a host buffer whose address is `regionAddress`.
///
/// It is not shadow context: it proves the supervisor's interception,
/// marshalling, pointer rewriting, fd table and policy end to end with real
/// host tools (whose output must then equal running them directly), with the
/// guest executor as the only part replaced. Guest fds are this process's fds.
public final class LocalExecutor: GuestSyscallExecutor {
    private let buffer: UnsafeMutableRawPointer
    public let regionSize: Int
    public var regionAddress: UInt64 { UInt64(UInt(bitPattern: buffer)) }
    /// Calls made, by number (for tests).
    public private(set) var calls: [Int] = []
    /// What it says of batches: true (the default) stands in for a GDB
    /// target, which runs one in a single stop; false for swvmm's VM,
    /// which runs one call at a time. It runs them one at a time either way.
    public let runsBatchesInOneTransition: Bool

    /// A region of `regionSize` bytes (default 64 KiB).
    public init(regionSize: Int = 64 * 1024, runsBatchesInOneTransition: Bool = true) {
        self.runsBatchesInOneTransition = runsBatchesInOneTransition
        self.regionSize = max(regionSize, 1)
        buffer = UnsafeMutableRawPointer.allocate(byteCount: self.regionSize, alignment: 4096)
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: self.regionSize)
    }

    deinit { buffer.deallocate() }

    public func writeRegion(offset: Int, _ bytes: [UInt8]) throws {
        guard offset >= 0, offset <= regionSize, bytes.count <= regionSize - offset else {
            throw SupervisorError.regionExhausted(needed: offset + bytes.count, available: regionSize)
        }
        bytes.withUnsafeBytes { source in
            guard let base = source.baseAddress else { return }
            (buffer + offset).copyMemory(from: base, byteCount: source.count)
        }
    }

    public func readRegion(offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= regionSize, count <= regionSize - offset else {
            throw SupervisorError.regionExhausted(needed: offset + count, available: regionSize)
        }
        return Array(UnsafeRawBufferPointer(start: buffer + offset, count: count))
    }

    public func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 {
        calls.append(number)
        var a = arguments + [UInt64](repeating: 0, count: max(0, 6 - arguments.count))
        a = Array(a.prefix(6))
        return Int64(cshadow_raw_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]))
    }
}
