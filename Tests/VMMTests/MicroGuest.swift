import CKVM
import Glibc
import Guest
@testable import VMM
import XCTest

/// A few bytes of hand-assembled 64-bit guest code in a tiny VM: the fixture
/// for the KVM micro-guest tests. It puts each vCPU straight into long mode
/// (identity-mapped first 2 MiB, flat segments) at CPL 0 or CPL 3.
///
/// On this project's development machines KVM runs CPL 3 natively and
/// emulates CPL 0 (shared/PLATFORM.md), so both privilege levels are worth
/// testing: CPL 3 is fast everywhere, CPL 0 is what a kernel runs.
final class MicroGuest {
    /// Guest-physical layout of the fixture.
    static let pml4: UInt64 = 0x1000, pdpt: UInt64 = 0x2000, pageDirectory: UInt64 = 0x3000
    static let codeAddress: UInt64 = 0x10000
    static let stackTop: UInt64 = 0x80000
    static let memorySize: UInt64 = 2 << 20

    let system: KVMSystem
    let machine: VirtualMachine
    let memory: GuestMemory
    private(set) var vcpus: [VirtualCPU] = []

    /// Skips the calling test, saying why, when this machine has no usable KVM.
    static func make(file: StaticString = #filePath, line: UInt = #line) throws -> MicroGuest {
        do {
            return try MicroGuest()
        } catch let error as KVMError {
            throw XCTSkip("no usable KVM on this machine: \(error)", file: file, line: line)
        }
    }

    private init() throws {
        system = try KVMSystem()
        machine = try system.createVirtualMachine()
        memory = try GuestMemory(size: MicroGuest.memorySize)
        try machine.mapMemory(memory)
        // PML4[0] -> PDPT, PDPT[0] -> PD, PD[0] = 2 MiB page at 0: present, writable, user, PS.
        let present: UInt64 = 1, writable: UInt64 = 2, user: UInt64 = 4, largePage: UInt64 = 0x80
        try memory.writeInteger(physical: MicroGuest.pml4, MicroGuest.pdpt | present | writable | user)
        try memory.writeInteger(physical: MicroGuest.pdpt, MicroGuest.pageDirectory | present | writable | user)
        try memory.writeInteger(physical: MicroGuest.pageDirectory, 0 | present | writable | user | largePage)
    }

    /// Places `code` at `codeAddress + offset`.
    func load(_ code: [UInt8], offset: UInt64 = 0) throws {
        try memory.writeBytes(physical: MicroGuest.codeAddress + offset, code)
    }

    /// Creates a vCPU in 64-bit mode at privilege level `cpl`, starting at
    /// `codeAddress + entryOffset` with `registers` applied on top.
    @discardableResult
    func addVCPU(cpl: UInt8, entryOffset: UInt64 = 0, configure: (inout kvm_regs) -> Void = { _ in }) throws -> VirtualCPU {
        let vcpu = try machine.createVirtualCPU(id: vcpus.count)
        var sregs = try vcpu.specialRegisters()
        let code = MicroGuest.segment(selector: cpl == 0 ? 0x08 : 0x1B, type: 0xB, dpl: cpl, longMode: true)
        let data = MicroGuest.segment(selector: cpl == 0 ? 0x10 : 0x23, type: 0x3, dpl: cpl, longMode: false)
        sregs.cs = code
        sregs.ds = data; sregs.es = data; sregs.fs = data; sregs.gs = data; sregs.ss = data
        sregs.cr3 = MicroGuest.pml4
        sregs.cr4 = 1 << 5                      // CR4.PAE (SDM Vol. 3A §2.5)
        sregs.cr0 = (1 << 0) | (1 << 31) | (1 << 4) | (1 << 5) // PE, PG, ET, NE
        sregs.efer = (1 << 8) | (1 << 10)       // EFER.LME, EFER.LMA
        try vcpu.setSpecialRegisters(sregs)
        var regs = kvm_regs()
        regs.rip = MicroGuest.codeAddress + entryOffset
        regs.rsp = MicroGuest.stackTop - UInt64(vcpus.count) * 0x1000
        regs.rflags = 0x2 | (3 << 12)           // reserved bit 1; IOPL 3 so CPL 3 may use in/out
        configure(&regs)
        try vcpu.setRegisters(regs)
        vcpus.append(vcpu)
        return vcpu
    }

    static func segment(selector: UInt16, type: UInt8, dpl: UInt8, longMode: Bool) -> kvm_segment {
        var segment = kvm_segment()
        segment.base = 0
        segment.limit = 0xFFFF_FFFF
        segment.selector = selector
        segment.type = type
        segment.present = 1
        segment.dpl = dpl
        segment.db = longMode ? 0 : 1
        segment.s = 1
        segment.l = longMode ? 1 : 0
        segment.g = 1
        return segment
    }
}
