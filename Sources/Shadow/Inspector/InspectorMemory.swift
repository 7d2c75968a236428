import CShadow
import Glibc

/// The inspector's memory, through process_vm_readv/writev. Every access is
/// bounded by the caller; nothing here trusts an address.
public struct InspectorMemory: Sendable {
    /// Longest path accepted, including its NUL (PATH_MAX, include/uapi/linux/limits.h).
    public static let pathMax = 4096
    /// Chunk for reading NUL-terminated strings: paths rarely cross it, and a
    /// shorter read near the end of a mapping is retried byte-exact.
    static let stringChunk = 256

    /// The process (or thread) whose memory this is.
    public let pid: Int32

    public init(pid: Int32) { self.pid = pid }

    /// Reads exactly `count` bytes at `address`.
    public func read(_ address: UInt64, count: Int) throws -> [UInt8] {
        guard count > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { cshadow_vm_read(pid, $0.baseAddress, count, address) }
        guard n == count else {
            throw SupervisorError.inspectorMemory(address: address, count: count, errno: n < 0 ? Int32(-n) : EFAULT)
        }
        return bytes
    }

    /// Writes all of `bytes` at `address`.
    public func write(_ address: UInt64, _ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { return }
        let n = bytes.withUnsafeBytes { cshadow_vm_write(pid, $0.baseAddress, bytes.count, address) }
        guard n == bytes.count else {
            throw SupervisorError.inspectorMemory(address: address, count: bytes.count, errno: n < 0 ? Int32(-n) : EFAULT)
        }
    }

    /// Scatters `bytes` over `iovecs` (address, length) in order; the total
    /// length of the iovecs must cover `bytes` (the caller clamps).
    public func write(_ bytes: [UInt8], scatteringOver iovecs: [(address: UInt64, length: Int)]) throws {
        var remaining = bytes.count
        var remote: [iovec] = []
        for v in iovecs where remaining > 0 && v.length > 0 {
            let take = min(v.length, remaining)
            remote.append(iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(v.address)), iov_len: take))
            remaining -= take
        }
        guard remaining == 0 else {
            throw SupervisorError.regionExhausted(needed: bytes.count, available: bytes.count - remaining)
        }
        guard !remote.isEmpty else { return }
        let n = bytes.withUnsafeBytes { local in
            remote.withUnsafeBufferPointer { cshadow_vm_write_scatter(pid, local.baseAddress, bytes.count, $0.baseAddress, UInt($0.count)) }
        }
        guard n == bytes.count else {
            let first = iovecs.first?.address ?? 0
            throw SupervisorError.inspectorMemory(address: first, count: bytes.count, errno: n < 0 ? Int32(-n) : EFAULT)
        }
    }

    /// Reads a NUL-terminated string of at most `pathMax` bytes including the
    /// NUL; returns the bytes without the NUL.
    public func readPath(_ address: UInt64) throws -> [UInt8] {
        guard address != 0 else { throw SupervisorError.inspectorMemory(address: 0, count: 1, errno: EFAULT) }
        var result: [UInt8] = []
        var cursor = address
        let found: Bool = try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.stringChunk) { chunk in
            while result.count < Self.pathMax {
                // Do not cross a page boundary in one read: the next page may be unmapped.
                let toPageEnd = Int(4096 - (cursor & 4095))
                let want = min(Self.stringChunk, toPageEnd, Self.pathMax - result.count)
                let n = cshadow_vm_read(pid, chunk.baseAddress, want, cursor)
                guard n > 0 else {
                    throw SupervisorError.inspectorMemory(address: cursor, count: want, errno: n < 0 ? Int32(-n) : EFAULT)
                }
                let read = UnsafeBufferPointer(rebasing: chunk[0 ..< Int(n)])
                if let nul = read.firstIndex(of: 0) {
                    result.append(contentsOf: read[0 ..< nul])
                    return true
                }
                result.append(contentsOf: read)
                cursor &+= UInt64(n)
            }
            return false
        }
        if found { return result }
        throw SupervisorError.pathTooLong(address: address)
    }
}
