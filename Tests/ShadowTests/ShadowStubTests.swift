import Foundation
import XCTest
import Guest
@testable import Shadow

/// The hand-assembled stub decodes to the listing in ShadowStub's doc
/// comment, with SYS and TRAP where the executor expects them; IDT gates
/// decode per the SDM; the state file round-trips.
final class ShadowStubTests: XCTestCase {
    func testStubDisassemblesToTheListing() throws {
        let stub = try ShadowStub(regionLength: 64 << 10, sleepNanoseconds: 20_000_000)
        let instructions = try Disassembler().disassemble(stub.code, address: 0x1000, maxInstructions: 64)
        // The batch runner after exit_group is FastPathTests' to check.
        XCTAssertEqual(instructions.prefix(18).map(\.mnemonic), ["lea", "mov", "mov", "mov", "add", "dec", "jne", "dec", "je",
                                                                  "mov", "lea", "xor", "syscall", "mov", "jmp", "mov", "xor", "syscall"])
        XCTAssertEqual(instructions[18].address, 0x1000 + UInt64(ShadowStub.batchOffset))
        XCTAssertEqual(instructions.first { $0.isSyscall }?.address, 0x1000 + UInt64(ShadowStub.syscallOffset))
        // TRAP: the result moves to rbx, where swvmm's own executor reads it at S's next syscall entry.
        let trap = instructions.first { $0.address == 0x1000 + UInt64(ShadowStub.trapOffset) }
        XCTAssertEqual(trap.map { "\($0.mnemonic) \($0.operands)" }, "mov rbx, rax")
        XCTAssertEqual(instructions.first { $0.mnemonic == "jmp" }?.address, 0x1000 + UInt64(ShadowStub.trapOffset) + 3)
        XCTAssertEqual(instructions.reduce(0) { $0 + $1.size }, stub.code.count)
    }

    func testIdleCountdown() throws {
        let stub = try ShadowStub(regionLength: 64 << 10, sleepNanoseconds: 20_000_000)
        XCTAssertEqual(stub.idleCountdown(for: .seconds(600)), 30_000)
        XCTAssertEqual(stub.idleCountdown(for: nil), 0, "0 counts down through 2^64: never")
        XCTAssertEqual(stub.idleCountdown(for: .milliseconds(1)), 1)
        let page = stub.firstPage(cookie: Array(0 ..< 16), cpu: nil, idleCountdown: 30_000)
        XCTAssertEqual(Array(page[ShadowStub.idleCountdownOffset ..< ShadowStub.idleCountdownOffset + 8]), le64(30_000))
    }

    func testStateKeyIsTheSocketsIdentityNotItsSpelling() throws {
        let dir = "/tmp/swvmm-statekey-test-\(getpid())"
        mkdir(dir, 0o700)
        defer { unlink(dir + "/gdb.sock"); unlink(dir + "/link.sock"); unlink(dir + "/other.sock"); rmdir(dir) }
        for name in ["gdb.sock", "other.sock"] {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, byte) in (dir + "/" + name).utf8.enumerated() { raw[i] = byte }
            }
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            XCTAssertEqual(rc, 0)
            close(fd)
        }
        symlink(dir + "/gdb.sock", dir + "/link.sock")
        let key = ShadowStateFile.key(unixSocket: dir + "/gdb.sock")
        XCTAssertEqual(ShadowStateFile.key(unixSocket: dir + "/./gdb.sock"), key)
        XCTAssertEqual(ShadowStateFile.key(unixSocket: dir + "/../" + (dir as NSString).lastPathComponent + "/gdb.sock"), key)
        XCTAssertEqual(ShadowStateFile.key(unixSocket: dir + "/link.sock"), key)
        XCTAssertNotEqual(ShadowStateFile.key(unixSocket: dir + "/other.sock"), key)
        XCTAssertEqual(ShadowStateFile.key(tcpHost: "localhost", port: 1234), ShadowStateFile.key(tcpHost: "127.0.0.1", port: 1234))
        XCTAssertNotEqual(ShadowStateFile.key(tcpHost: "127.0.0.1", port: 1234), ShadowStateFile.key(tcpHost: "127.0.0.1", port: 1235))
    }

    func testStateDirectoryIsTheUsersWhateverTheEnvironment() throws {
        let before = ShadowStateFile.defaultDirectory()
        let saved = getenv("XDG_RUNTIME_DIR").map { String(cString: $0) }
        setenv("XDG_RUNTIME_DIR", "/tmp/some-other-runtime-dir", 1)
        defer { if let saved { setenv("XDG_RUNTIME_DIR", saved, 1) } else { unsetenv("XDG_RUNTIME_DIR") } }
        XCTAssertEqual(ShadowStateFile.defaultDirectory(), before)
        XCTAssertEqual(before, "/tmp/swvmm-\(getuid())")
    }

    func testStateDirectoryOpenToOthersIsRefused() throws {
        let dir = "/tmp/swvmm-statefile-open-\(getpid())"
        mkdir(dir, 0o700)
        chmod(dir, 0o777)
        defer { rmdir(dir) }
        let file = ShadowStateFile(key: "unix-x", directory: dir)
        let s = ShadowProcess(pid: 42, paging: PagingContext(root: 0x1234000, fiveLevel: false, noExecuteEnabled: false),
                              regionBase: 0x7f00_0000_0000, regionLength: 65536, cookie: Array(0 ..< 16),
                              sleepNanoseconds: 20_000_000, borrowedPID: 7)
        XCTAssertThrowsError(try file.save(s))
        XCTAssertThrowsError(try file.load())
    }

    func testIDTGateDecode() {
        // offset 0xffffffff_81a00b50, selector 0x10, present interrupt gate (0x8E).
        let low: UInt64 = 0x81a0_8e00_0010_0b50, high: UInt64 = 0x0000_0000_ffff_ffff
        let gate = IDTGate(low: low, high: high)
        XCTAssertEqual(gate.offset, 0xffff_ffff_81a0_0b50)
        XCTAssertEqual(gate.selector, 0x10)
        XCTAssertEqual(gate.type, IDTGate.interruptGateType)
        XCTAssertTrue(gate.present)
    }

    func testStateFileRoundTrip() throws {
        let dir = "/tmp/swvmm-statefile-test-\(getpid())"
        let file = ShadowStateFile(key: "unix:/x/gdb.sock", directory: dir)
        let s = ShadowProcess(pid: 42, paging: PagingContext(root: 0x1234000, fiveLevel: true, noExecuteEnabled: false), regionBase: 0x7f00_0000_0000, regionLength: 65536,
                              cookie: Array(0 ..< 16), sleepNanoseconds: 20_000_000, borrowedPID: 7)
        try file.save(s)
        XCTAssertEqual(try file.load(), s)
        file.remove()
        XCTAssertNil(try file.load())
        rmdir(dir)
    }
}
