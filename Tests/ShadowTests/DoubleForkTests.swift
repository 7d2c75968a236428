import XCTest
import Guest
@testable import Shadow

/// A scripted kernel for `DoubleFork`, on a `ScriptedTarget`: the unit-test
/// machine has no guest, so the few system calls the double fork makes are
/// played here. A process standing on `site` executes the call in its rax
/// and returns to `site + 2`; clone makes a new process (a new root, rax 0,
/// on a vCPU of its own), wait4 blocks until the child has exited.
final class ScriptedKernel {
    let target: ScriptedTarget
    let site: UInt64
    /// Every call made, as (pid, number, arguments).
    private(set) var calls: [(pid: Int64, number: Int, arguments: [UInt64])] = []
    private(set) var exited: Set<Int64> = []
    private(set) var reaped: Set<Int64> = []
    private var nextPID: Int64 = 200
    /// clone fails in the first process with this -errno, when set.
    var cloneFailure: Int64? = nil
    /// The first wait4 is interrupted by a signal (EINTR) when set.
    var interruptFirstWait = false

    init(target: ScriptedTarget, site: UInt64) {
        self.target = target
        self.site = site
    }

    /// Adds process `pid` with `registers`.
    func spawn(pid: Int64, _ registers: GuestRegisters) {
        target.processes.append(.init(registers: registers) { [unowned self] r in step(pid, r) })
    }

    private func step(_ pid: Int64, _ r: GuestRegisters) -> GuestRegisters {
        guard r.rip == site, !exited.contains(pid) else { return r }
        let number = Int(r.rax)
        let arguments = [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]
        var result: Int64 = 0
        switch number {
        case LinuxABI.Syscall.clone:
            if let cloneFailure, calls.allSatisfy({ $0.number != LinuxABI.Syscall.clone }) {
                result = cloneFailure
                break
            }
            let child = nextPID
            nextPID += 1
            var c = r
            c.rax = 0
            c.rip = site &+ 2
            c.cr3 = 0x80_0000 + UInt64(child) * 0x1000
            spawn(pid: child, c)
            result = child
        case LinuxABI.Syscall.wait4:
            if interruptFirstWait, !calls.contains(where: { $0.number == LinuxABI.Syscall.wait4 }) {
                result = -4
                break
            }
            let child = Int64(bitPattern: arguments[0])
            guard exited.contains(child) else { return r }  // blocked
            reaped.insert(child)
            result = child
        case LinuxABI.Syscall.exit:
            calls.append((pid, number, arguments))
            exited.insert(pid)
            var gone = r
            gone.rip = 0
            return gone
        case LinuxABI.Syscall.setsid:
            result = pid
        case LinuxABI.Syscall.munmap, LinuxABI.Syscall.rtSigprocmask, LinuxABI.Syscall.prctl:
            result = 0
        default:
            result = -38  // ENOSYS
        }
        calls.append((pid, number, arguments))
        var back = r
        back.rax = UInt64(bitPattern: result)
        back.rip = site &+ 2
        return back
    }

    func calls(of pid: Int64) -> [Int] { calls.filter { $0.pid == pid }.map(\.number) }
}

/// `DoubleFork` against the scripted kernel: P makes C1, C1 makes S and
/// exits, P reaps C1 and unmaps the region, S settles and enters its stub.
final class DoubleForkTests: XCTestCase {
    static let site: UInt64 = 0x7FFF_F7FD_0A00
    static let region: UInt64 = 0x7F00_0000_0000
    static let rsp: UInt64 = 0x7FFF_FFFF_E000
    static let pRoot: UInt64 = 0x30_0000

    let target = ScriptedTarget()
    lazy var kernel = ScriptedKernel(target: target, site: Self.site)
    var saved = GuestRegisters()

    override func setUp() {
        // P as it was borrowed: somewhere in its code, with its own registers.
        saved.cs = 0x33; saved.cr3 = Self.pRoot; saved.rsp = Self.rsp
        saved.rip = 0x40_1000; saved.rax = 0x1111; saved.rdi = 0x2222; saved.r11 = 0x246
        // P now stands at the site's return, as after the injected getpid.
        var p = saved
        p.rip = Self.site + 2
        p.rax = 100
        kernel.spawn(pid: 100, p)
    }

    private func doubleFork() throws -> DoubleFork {
        let injector = SyscallInjector(target: target, site: Self.site, root: Self.pRoot, rsp: Self.rsp)
        try target.insertBreakpoint(at: injector.returnAddress)
        var fork = DoubleFork(target: target, injector: injector, saved: saved, region: Self.region, length: 0x10000, pinned: false)
        var loop = StopLoop(target: target)
        let p = UserStop(vcpu: VCPUID(0), registers: try target.registers(of: VCPUID(0)))
        try fork.run(from: p, loop: &loop, timeout: .seconds(5))
        return fork
    }

    func testMakesSAndLeavesPAsItWas() throws {
        let fork = try doubleFork()
        // Pids: C1 200, S 201.
        XCTAssertEqual(fork.shadowPID, 201)
        XCTAssertEqual(fork.shadowRoot, 0x80_0000 + 201 * 0x1000)
        XCTAssertEqual(kernel.calls(of: 100), [LinuxABI.Syscall.clone, LinuxABI.Syscall.wait4, LinuxABI.Syscall.munmap])
        XCTAssertEqual(kernel.calls(of: 200), [LinuxABI.Syscall.clone, LinuxABI.Syscall.exit])
        // setsid, block signals, then prctl: its name, its command line's start and end.
        XCTAssertEqual(kernel.calls(of: 201), [LinuxABI.Syscall.setsid, LinuxABI.Syscall.rtSigprocmask,
                                               LinuxABI.Syscall.prctl, LinuxABI.Syscall.prctl, LinuxABI.Syscall.prctl])
        XCTAssertEqual(kernel.reaped, [200], "P reaped C1: no child left")
        let p = try target.registers(of: VCPUID(0))
        XCTAssertEqual(p.restoringUserState(saved), p, "P's user state is what it was")
        XCTAssertEqual(p.rip, saved.rip)
        XCTAssertEqual(fork.restored, p)
        let s = try target.registers(of: VCPUID(2))
        XCTAssertEqual(s.rip, Self.region + UInt64(ShadowStub.entryOffset), "S runs its stub")
        XCTAssertEqual(s.rsp, Self.region + UInt64(ShadowStub.stackTop))
    }

    func testInterruptedWaitIsRestarted() throws {
        kernel.interruptFirstWait = true
        let fork = try doubleFork()
        XCTAssertEqual(fork.shadowPID, 201)
        XCTAssertEqual(kernel.calls(of: 100), [LinuxABI.Syscall.clone, LinuxABI.Syscall.wait4, LinuxABI.Syscall.wait4, LinuxABI.Syscall.munmap])
    }

    func testFailedCloneRestoresP() throws {
        kernel.cloneFailure = -11  // EAGAIN
        XCTAssertThrowsError(try doubleFork()) { error in
            XCTAssertEqual(error as? ShadowError, .injectedCallFailed(call: "clone (first fork, in P)", errno: 11))
        }
        XCTAssertEqual(try target.registers(of: VCPUID(0)).rip, saved.rip)
        XCTAssertEqual(target.processes.count, 1, "no child")
    }
}
