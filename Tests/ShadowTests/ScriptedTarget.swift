import Guest
@testable import Shadow

/// A scripted stand-in for a guest behind a `Target`, for unit tests of the
/// shadow core on a machine without one (the live QEMU tests cover the real
/// thing). It mocks exactly what the unit-test machine lacks: vCPUs that run.
///
/// Guest memory is a sparse fake of RAM; `mapUserRegion` builds 4-level page
/// tables for one process. The "guest" is a list of scripted processes: on
/// each `resume`, each one in turn advances one step (`advance`), and if it
/// then stands on a breakpoint it is offered to the caller's `wanted`; a
/// declined hit is counted and the process is moved past the breakpoint
/// (rip + 1), as a real target steps it. Nothing offered and wanted:
/// `.timeout`. Processes may be added while it runs (a scripted clone): each
/// runs on a vCPU of its own.
final class ScriptedTarget: Target {
    /// One scripted process on its own vCPU.
    struct Process {
        var registers: GuestRegisters
        /// Moves the process on by one scheduling slice: gets its registers,
        /// returns them changed (rip where it stops next).
        var advance: (GuestRegisters) -> GuestRegisters
    }

    var processes: [Process] = []
    private(set) var breakpoints: Set<UInt64> = []
    /// Hits `wanted` declined (the target moved those vCPUs past them).
    private(set) var declined = 0
    private(set) var stops = 0
    private(set) var running = false
    private var pages: [UInt64: [UInt8]] = [:]
    private var nextTable: UInt64 = 0x10_0000

    var vcpus: [VCPUID] { processes.indices.map { VCPUID($0) } }

    func registers(of vcpu: VCPUID) throws -> GuestRegisters { processes[vcpu.rawValue].registers }
    func setRegisters(_ registers: GuestRegisters, of vcpu: VCPUID) throws { processes[vcpu.rawValue].registers = registers }
    func insertBreakpoint(at virtualAddress: UInt64) throws { breakpoints.insert(virtualAddress) }
    func removeBreakpoint(at virtualAddress: UInt64) throws { breakpoints.remove(virtualAddress) }

    func resume(until timeout: Duration, stoppingAt wanted: (VCPUID, GuestRegisters) throws -> Bool) throws -> StopEvent {
        stops += 1
        for index in processes.indices {
            let advance = processes[index].advance
            let registers = advance(processes[index].registers)
            processes[index].registers = registers
            guard breakpoints.contains(registers.rip) else { continue }
            if try wanted(VCPUID(index), registers) { return .breakpoint(VCPUID(index), registers) }
            declined += 1
            stops += 1
            processes[index].registers.rip &+= 1
        }
        return .timeout
    }

    func stop() throws {}
    func resumeWithoutWaiting() throws { running = true }
    func halt() throws { running = false }
    /// What `idtRegister(of:)` answers for every vCPU.
    var idtr = DescriptorTableRegister(base: 0, limit: 0)
    func idtRegister(of vcpu: VCPUID) throws -> DescriptorTableRegister { idtr }
    func detach() throws {}

    // MARK: memory

    func read(physical address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        for i in 0 ..< buffer.count {
            let a = address + UInt64(i)
            buffer[i] = pages[a & ~0xFFF]?[Int(a & 0xFFF)] ?? 0
        }
    }

    func write(physical address: UInt64, from buffer: UnsafeRawBufferPointer) throws {
        for i in 0 ..< buffer.count {
            let a = address + UInt64(i)
            pages[a & ~0xFFF, default: [UInt8](repeating: 0, count: 0x1000)][Int(a & 0xFFF)] = buffer[i]
        }
    }

    /// Entry bits present, writable, user (Intel SDM Vol. 3A table 4-19).
    static let userPage: UInt64 = 0x7

    /// An empty address space: its top-level table's physical address.
    func newAddressSpace() -> UInt64 { newTable() }

    /// Maps `count` pages at `virtualBase` to physical `physicalBase` (present,
    /// writable, user) in the 4-level tables under `root`.
    func map(_ virtualBase: UInt64, pages count: Int, to physicalBase: UInt64, in root: UInt64) throws {
        for page in 0 ..< count {
            let va = virtualBase + UInt64(page) * 0x1000
            var table = root
            for level in stride(from: 4, to: 1, by: -1) {
                let entry = table + ((va >> (12 + 9 * UInt64(level - 1))) & 0x1FF) * 8
                var next = try readInteger(physical: entry, as: UInt64.self) & ~0xFFF
                if next == 0 {
                    next = newTable()
                    try writeInteger(physical: entry, next | Self.userPage)
                }
                table = next
            }
            try writeInteger(physical: table + ((va >> 12) & 0x1FF) * 8, (physicalBase + UInt64(page) * 0x1000) | Self.userPage)
        }
    }

    /// Maps `count` pages at `virtualBase` in a new address space and returns its paging context.
    func mapUserRegion(virtualBase: UInt64, pages count: Int, physicalBase: UInt64) throws -> PagingContext {
        let root = newAddressSpace()
        try map(virtualBase, pages: count, to: physicalBase, in: root)
        return PagingContext(root: root, fiveLevel: false)
    }

    private func newTable() -> UInt64 {
        defer { nextTable += 0x1000 }
        return nextTable
    }
}
