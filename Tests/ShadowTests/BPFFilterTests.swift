import CShadow
import Glibc
import XCTest
@testable import Shadow

/// The shadow filter, interpreted in Swift and installed in real children.
final class BPFFilterTests: XCTestCase {
    let range = GuestFdRange(lowerBound: 1000, count: 64)
    let notify = CSHADOW_RET_USER_NOTIF
    let allow = CSHADOW_RET_ALLOW
    let kill = CSHADOW_RET_KILL_PROCESS

    private func interpreter() throws -> BPFInterpreter {
        BPFInterpreter(program: try SeccompFilter.build(range: range))
    }

    func testArchitectureAndX32AreKilled() throws {
        let bpf = try interpreter()
        XCTAssertEqual(try bpf.run(number: LinuxABI.Syscall.getpid, arch: 0x4000_0003 /* AUDIT_ARCH_I386 */), kill)
        XCTAssertEqual(try bpf.run(number: 0x4000_0000 | LinuxABI.Syscall.read), kill)
        XCTAssertEqual(try bpf.run(number: LinuxABI.Syscall.getpid), allow)
    }

    func testPathCallsAlwaysNotify() throws {
        let bpf = try interpreter()
        for n in [LinuxABI.Syscall.openat, LinuxABI.Syscall.open, LinuxABI.Syscall.stat, LinuxABI.Syscall.lstat,
                  LinuxABI.Syscall.newfstatat, LinuxABI.Syscall.statx, LinuxABI.Syscall.readlink, LinuxABI.Syscall.readlinkat,
                  LinuxABI.Syscall.access, LinuxABI.Syscall.faccessat, LinuxABI.Syscall.faccessat2, LinuxABI.Syscall.statfs,
                  LinuxABI.Syscall.chdir, LinuxABI.Syscall.fchdir, LinuxABI.Syscall.getcwd, LinuxABI.Syscall.uname,
                  LinuxABI.Syscall.sysinfo, LinuxABI.Syscall.closeRange, LinuxABI.Syscall.unlink, LinuxABI.Syscall.mkdir] {
            XCTAssertEqual(try bpf.run(number: n, arguments: [3, 0, 0]), notify, "syscall \(n)")
        }
    }

    func testFdCallsNotifyOnlyInRange() throws {
        let bpf = try interpreter()
        for n in [LinuxABI.Syscall.read, LinuxABI.Syscall.close, LinuxABI.Syscall.fstat, LinuxABI.Syscall.lseek,
                  LinuxABI.Syscall.getdents64, LinuxABI.Syscall.pread64, LinuxABI.Syscall.readv, LinuxABI.Syscall.fcntl,
                  LinuxABI.Syscall.dup, LinuxABI.Syscall.fstatfs, LinuxABI.Syscall.ioctl] {
            XCTAssertEqual(try bpf.run(number: n, arguments: [3]), allow, "syscall \(n) fd 3")
            XCTAssertEqual(try bpf.run(number: n, arguments: [999]), allow, "syscall \(n) fd 999")
            XCTAssertEqual(try bpf.run(number: n, arguments: [1000]), notify, "syscall \(n) fd 1000")
            XCTAssertEqual(try bpf.run(number: n, arguments: [1063]), notify, "syscall \(n) fd 1063")
            XCTAssertEqual(try bpf.run(number: n, arguments: [1064]), allow, "syscall \(n) fd 1064")
            // Only the low 32 bits are the int fd: high garbage does not matter.
            XCTAssertEqual(try bpf.run(number: n, arguments: [0xFFFF_FFFF_0000_03E8]), notify, "syscall \(n) high bits")
            // -1 (AT_FDCWD-like negatives) is never in range.
            XCTAssertEqual(try bpf.run(number: n, arguments: [0xFFFF_FFFF]), allow, "syscall \(n) fd -1")
        }
    }

    func testSecondFdArgument() throws {
        let bpf = try interpreter()
        XCTAssertEqual(try bpf.run(number: LinuxABI.Syscall.dup2, arguments: [3, 1001]), notify)
        XCTAssertEqual(try bpf.run(number: LinuxABI.Syscall.dup2, arguments: [1001, 3]), notify)
        XCTAssertEqual(try bpf.run(number: LinuxABI.Syscall.dup2, arguments: [3, 4]), allow)
        XCTAssertEqual(try bpf.run(number: LinuxABI.Syscall.mmap, arguments: [0, 4096, 1, 2, 1005, 0]), notify)
        XCTAssertEqual(try bpf.run(number: LinuxABI.Syscall.mmap, arguments: [0, 4096, 1, 0x22, 0xFFFF_FFFF, 0]), allow)
    }

    func testNetlinkSocketOnly() throws {
        let bpf = try interpreter()
        XCTAssertEqual(try bpf.run(number: LinuxABI.Syscall.socket, arguments: [16, 3, 0]), notify)
        XCTAssertEqual(try bpf.run(number: LinuxABI.Syscall.socket, arguments: [2, 1, 0]), allow)
        XCTAssertEqual(try bpf.run(number: LinuxABI.Syscall.socket, arguments: [1, 1, 0]), allow)
    }

    func testCallsTheSpawnNeedsAreAllowed() throws {
        // Between the filter's install and exec the child runs these.
        let bpf = try interpreter()
        for (n, args) in [(59, [UInt64]()) /* execve */, (46, [4]) /* sendmsg */, (LinuxABI.Syscall.write, [5]), (231, [127]) /* exit_group */] {
            XCTAssertEqual(try bpf.run(number: n, arguments: args), allow, "syscall \(n)")
        }
    }

    func testUnknownNumbersNotify() throws {
        // Nothing the table does not know runs without the supervisor's answer.
        let bpf = try interpreter()
        for n in [335, 400, 423, SyscallClassTable.highestNumber + 1, 1000, 0x3FFF_FFFF] {
            XCTAssertEqual(try bpf.run(number: n, arguments: [3, 3, 3]), notify, "syscall \(n)")
        }
    }

    func testMachineCallsAlwaysNotify() throws {
        let bpf = try interpreter()
        for n in [LinuxABI.Syscall.kill, LinuxABI.Syscall.tgkill, LinuxABI.Syscall.sethostname, LinuxABI.Syscall.setdomainname,
                  LinuxABI.Syscall.settimeofday, LinuxABI.Syscall.ptrace, LinuxABI.Syscall.pidfdOpen, LinuxABI.Syscall.syslog,
                  165 /* mount */, 169 /* reboot */, 175 /* init_module */, 159 /* adjtimex */] {
            XCTAssertEqual(try bpf.run(number: n, arguments: [0, 0, 0]), notify, "syscall \(n)")
        }
    }

    func testAssemblerRejectsLongJumps() {
        var asm = BPFAssembler()
        let far = asm.label()
        asm.jumpIfEqual(1, then: far, else: nil)
        for _ in 0..<300 { asm.ret(0) }
        asm.place(far)
        asm.ret(1)
        XCTAssertThrowsError(try asm.assemble()) { XCTAssertEqual($0 as? BPFError, .jumpTooFar(from: 0, to: 301)) }
    }

    func testAssemblerRejectsBackwardLabel() {
        var asm = BPFAssembler()
        let back = asm.label()
        asm.place(back)
        asm.jump(back)
        XCTAssertThrowsError(try asm.assemble())
    }

    func testRangeValidation() {
        XCTAssertThrowsError(try GuestFdRange(lowerBound: -5, count: 10).validate())
        XCTAssertThrowsError(try GuestFdRange(lowerBound: Int32.max - 2, count: 10).validate())
        XCTAssertNoThrow(try GuestFdRange.standard.validate())
    }

    /// The kernel accepts the program (its verifier is stricter than ours) and
    /// traps the right call in a real child: the child loops on getppid while
    /// we answer each one with a value it would never see from the kernel.
    func testInstalledInRealChild() throws {
        let filter = try SeccompFilter.trapping(number: LinuxABI.Syscall.getppid)
        let child = try InspectorProcess.spawnSyscallLoop(filter: filter, number: LinuxABI.Syscall.getppid, count: 10)
        var answered = 0
        while answered < 10 {
            var n = seccomp_notif()
            guard cshadow_notif_recv(child.listener, &n) == 0 else { continue }
            XCTAssertEqual(Int(n.data.nr), LinuxABI.Syscall.getppid)
            XCTAssertEqual(n.data.arch, CSHADOW_AUDIT_ARCH_X86_64)
            var r = seccomp_notif_resp()
            r.id = n.id
            r.val = 4242
            XCTAssertEqual(cshadow_notif_send(child.listener, &r), 0)
            answered += 1
        }
        XCTAssertEqual(try child.wait(), .exited(0))
    }

    /// The full shadow filter installs in a real process (checked by the kernel).
    func testShadowFilterAcceptedByKernel() throws {
        let filter = try SeccompFilter.build(range: .standard)
        XCTAssertLessThan(filter.count, BPFAssembler.maximumLength)
        let child = try InspectorProcess.spawnSyscallLoop(filter: filter, number: LinuxABI.Syscall.getpid, count: 100)
        XCTAssertEqual(try child.wait(), .exited(0))
    }
}
