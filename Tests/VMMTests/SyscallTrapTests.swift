import CKVM
import Guest
import MicroVM
import VMM
import XCTest

/// The syscall-entry trap native shadow context is built on, proved on a
/// micro-guest: with `MSR_LSTAR` pointed at an `out imm8`, every 64-bit
/// `syscall` exits to the VMM at CPL 0 holding the caller's whole user
/// context; moving rip to the real entry lets the call through, and the
/// real entry's `sysretq` returns to the caller.
///
/// Needs hardware virtualization: a KVM that emulates kernel code (these
/// development machines, shared/PLATFORM.md) cannot return to CPL 3 with
/// `sysretq`. CI runs this class inside the KVM host (KVMHostSuiteTests).
final class SyscallTrapTests: XCTestCase {
    /// User code at the code address, counting in rbx:
    ///   u: mov edi, ebx; mov eax, 39; syscall; mov edx, 0x81; out dx, eax; inc ebx; jmp u
    static let user: [UInt8] = [
        0x89, 0xDF, 0xB8, 0x27, 0x00, 0x00, 0x00, 0x0F, 0x05,
        0xBA, 0x81, 0x00, 0x00, 0x00, 0xEF, 0xFF, 0xC3, 0xEB, 0xED,
    ]
    static let syscallOffset: UInt64 = 7, afterSyscall: UInt64 = 9
    static let resultPort: UInt16 = 0x81
    /// The trap point: `out 0xE5, al`, two bytes, in "kernel text".
    static let trapOffset: UInt64 = 0x100
    static let trapPort: UInt8 = 0xE5
    /// The "real" entry: lea rax, [rdi + 1000]; o64 sysret.
    static let entryOffset: UInt64 = 0x200
    static let entry: [UInt8] = [0x48, 0x8D, 0x87, 0xE8, 0x03, 0x00, 0x00, 0x48, 0x0F, 0x07]
    /// IA32_STAR: kernel CS 0x08 (SS 0x10) on entry; SYSRET takes CS = 0x10 + 16, SS = 0x10 + 8, RPL 3 (SDM Vol. 2B SYSRET).
    static let star: UInt64 = 0x0010_0008 << 32

    private var guest: MicroVM!
    private var vcpu: VirtualCPU!

    override func setUpWithError() throws {
        guard HostPlatform.hasHardwareVirtualization else {
            throw XCTSkip("needs hardware virtualization (vmx/svm): this host's KVM emulates CPL 0 and cannot sysretq; "
                          + "CI runs this class in the KVM host")
        }
        guest = try MicroGuest.make()
        try guest.load(Self.user)
        try guest.load([0xE6, Self.trapPort], offset: Self.trapOffset)
        try guest.load(Self.entry, offset: Self.entryOffset)
        vcpu = try guest.addVCPU(cpl: 3)
        var sregs = try vcpu.specialRegisters()
        sregs.efer |= EFER.sce
        try vcpu.setSpecialRegisters(sregs)
        try vcpu.setModelSpecificRegisters([
            (BootMSRs.star, Self.star), (BootMSRs.lstar, MicroVM.codeAddress + Self.trapOffset), (BootMSRs.syscallMask, 0),
        ])
    }

    /// Runs until the next port exit; returns its port and the registers then.
    private func nextPortExit() throws -> (port: UInt16, value: UInt32, regs: kvm_regs, sregs: kvm_sregs) {
        for _ in 0..<16 {
            let exit = try vcpu.run()
            if case .interrupted = exit { continue }
            guard case let .portIO(io) = exit else { throw ExitMismatch(exit: exit.name) }
            var value: UInt32 = 0
            for index in 0..<min(io.size, 4) { value |= UInt32(io.data[index]) << (8 * index) }
            return (io.port, value, try vcpu.registers(), try vcpu.specialRegisters())
        }
        throw ExitMismatch(exit: "none (only interruptions)")
    }

    struct ExitMismatch: Error { let exit: String }

    func testSyscallExitsAtTheTrapPointWithTheCallersWholeUserContext() throws {
        let trap = try nextPortExit()
        XCTAssertEqual(trap.port, UInt16(Self.trapPort), "the syscall reached LSTAR's out")
        XCTAssertEqual(trap.sregs.cs.selector & 3, 0, "at CPL 0")
        XCTAssertEqual(trap.regs.rip, MicroVM.codeAddress + Self.trapOffset, "rip is the out itself (before completion)")
        XCTAssertEqual(trap.regs.rax, 39, "the call number")
        XCTAssertEqual(trap.regs.rdi, 0, "the first argument")
        XCTAssertEqual(trap.regs.rcx, MicroVM.codeAddress + Self.afterSyscall, "rcx: the caller's return rip")
        XCTAssertNotEqual(trap.regs.r11 & (3 << 12), 0, "r11: the caller's rflags (IOPL 3)")
        XCTAssertEqual(trap.regs.rsp, MicroVM.stackTop, "the caller's stack: syscall does not switch it")
        XCTAssertEqual(trap.sregs.cr3, MicroVM.pml4, "the caller's page-table root")
    }

    func testMovingRipToTheRealEntryLetsTheCallThroughAndBackToUserMode() throws {
        for round in 0..<3 {
            let trap = try nextPortExit()
            XCTAssertEqual(trap.port, UInt16(Self.trapPort))
            var regs = trap.regs
            regs.rip = MicroVM.codeAddress + Self.entryOffset
            try vcpu.setRegisters(regs)
            let result = try nextPortExit()
            XCTAssertEqual(result.port, Self.resultPort, "round \(round): back in user mode, reporting")
            XCTAssertEqual(result.sregs.cs.selector & 3, 3, "at CPL 3")
            XCTAssertEqual(result.value, 1000 + UInt32(round), "the real entry ran with the caller's arguments")
        }
    }

    func testAnInjectedCallRunsInsteadAndTheCallerResumesAtItsSyscall() throws {
        let trap = try nextPortExit()
        var regs = trap.regs
        regs.rdi = 5
        regs.rcx -= 2          // return to the caller's own syscall: it traps again with the result
        regs.rip = MicroVM.codeAddress + Self.entryOffset
        try vcpu.setRegisters(regs)
        let again = try nextPortExit()
        XCTAssertEqual(again.port, UInt16(Self.trapPort), "the caller's syscall trapped again")
        XCTAssertEqual(again.regs.rax, 1005, "holding the injected call's result in rax")
        XCTAssertEqual(again.regs.rcx, MicroVM.codeAddress + Self.afterSyscall)
    }

    func testAnExitHandlerTakesTheTrapOnItsVCPUWhileTheMachineRuns() throws {
        let runner = VCPURunner(vcpus: [vcpu], memory: guest.memory)
        let handle = try XCTUnwrap(runner.vcpu(0))
        let trapped = LockedBox(0), results = LockedBox<[UInt32]>([])
        let entry = MicroVM.codeAddress + Self.entryOffset
        handle.exitHandler = { exit, vcpu in
            guard case let .portIO(io) = exit else { return .notHandled }
            if io.port == UInt16(Self.trapPort), var regs = try? vcpu.registers() {
                trapped.value += 1
                regs.rip = entry
                return (try? vcpu.setRegisters(regs)) == nil ? .pause : .handled
            }
            if io.port == Self.resultPort {
                results.value.append(io.data.load(as: UInt32.self))
                return results.value.count == 10 ? .pause : .handled
            }
            return .notHandled
        }
        let thread = try HostThread { _ = runner.run() }
        defer {
            runner.stop(.stoppedByUser("test done"))
            thread.join()
        }
        let deadline = Date().addingTimeInterval(20)
        while handle.state != .paused, Date() < deadline { usleep(1000) }
        XCTAssertEqual(results.value, (0..<10).map { 1000 + UInt32($0) })
        XCTAssertEqual(trapped.value, 10, "one trap exit per syscall")
    }
}
