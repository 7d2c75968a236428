import Glibc
@testable import Shadow

/// A guest stand-in for machine calls: the guest is what these tests lack.
/// Calls of class `.machine` are recorded (with the region's bytes at their
/// pointer arguments) and answered 0 without running anywhere; every other
/// call runs on this host through a `LocalExecutor`, as in the other
/// supervisor tests. So a test sees exactly which machine calls "went to the
/// guest", and nothing of this host is changed by them.
final class RecordingGuest: GuestSyscallExecutor {
    struct Call: Equatable {
        var number: Int
        var arguments: [UInt64]
    }
    let inner = LocalExecutor(regionSize: 16384)
    private(set) var machineCalls: [Call] = []
    var regionAddress: UInt64 { inner.regionAddress }
    var regionSize: Int { inner.regionSize }
    func writeRegion(offset: Int, _ bytes: [UInt8]) throws { try inner.writeRegion(offset: offset, bytes) }
    func readRegion(offset: Int, count: Int) throws -> [UInt8] { try inner.readRegion(offset: offset, count: count) }

    func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 {
        if case .machine = SyscallClassTable.callClass(of: number) {
            machineCalls.append(Call(number: number, arguments: arguments))
            return 0
        }
        return try inner.syscall(number, arguments)
    }

    /// The NUL-free bytes at region address `address`, `count` long.
    func regionBytes(at address: UInt64, count: Int) throws -> [UInt8] {
        try inner.readRegion(offset: Int(address - regionAddress), count: count)
    }
}
