import Foundation
import Shadow
import XCTest

/// `swvmm shadow --vm` through the built binary. The VM side is a control
/// server in this test process whose executor is a LocalExecutor: this
/// machine cannot boot a guest under swvmm's own KVM, so the one stand-in is
/// the guest executor ("guest" calls run on this host, and a tool's output
/// must equal running it directly); the binary, its client, the socket and
/// the supervisor are the real ones.
final class ShadowVMClientTests: XCTestCase {
    private var scratch: ScratchDirectory!

    override func setUpWithError() throws {
        try Swvmm.requireBinary()
        scratch = try ScratchDirectory()
    }

    override func tearDown() {
        scratch = nil
    }

    private var socketPath: String { scratch.url.appendingPathComponent("vm.sock").path }

    private func direct(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    func testAMissingSocketGetsAClearMessage() throws {
        let path = scratch.url.appendingPathComponent("no-vm.sock").path
        let result = try Swvmm.run(["shadow", "--vm", path, "--", "true"], timeout: 30)
        Swvmm.assertEndedCleanly(result)
        XCTAssertEqual(result.status, 1, result.summary)
        XCTAssertEqual(result.stderrLines, ["swvmm: no socket at \(path): is a swvmm VM running with --shadow?"], result.summary)
    }

    func testExactlyOneOfGdbAndVm() throws {
        for arguments in [["shadow", "--vm", socketPath, "--gdb", "unix:/nonexistent", "--", "true"], ["shadow", "--", "true"]] {
            let result = try Swvmm.run(arguments, timeout: 30)
            Swvmm.assertEndedCleanly(result)
            XCTAssertEqual(result.status, 64, result.summary)
            XCTAssertTrue(result.stderr.contains("give exactly one of --gdb ADDRESS (a QEMU gdbstub) and --vm SOCKET"), result.summary)
        }
        let help = try Swvmm.run(["shadow", "--help"], timeout: 30)
        XCTAssertEqual(help.status, 0, help.summary)
        XCTAssertTrue(help.stdout.contains("--vm <socket>"), help.summary)
    }

    func testAToolRunsThroughTheVMsServer() throws {
        let executor = LocalExecutor()
        let server = try ShadowControlServer(socketPath: socketPath, provider: { executor }, log: { _ in })
        try server.start()
        defer { server.stop() }
        let result = try Swvmm.run(["shadow", "--vm", socketPath, "--", "uname", "-a"], timeout: 30)
        Swvmm.assertEndedCleanly(result)
        XCTAssertEqual(result.status, 0, result.summary)
        XCTAssertEqual(result.stdout, try direct(["uname", "-a"]))
        XCTAssertEqual(result.stderr, "")
        XCTAssertTrue(executor.calls.contains(LinuxABI.Syscall.uname), "uname went around the server: \(executor.calls)")
        let status = try Swvmm.run(["shadow", "--vm", socketPath, "--", "sh", "-c", "exit 7"], timeout: 30)
        XCTAssertEqual(status.status, 7, status.summary)
    }

    /// `--verbose` ends with how the run's calls were placed: uname(2) is the one call run "in the guest" here.
    func testVerboseSaysHowTheCallsWerePlaced() throws {
        let executor = LocalExecutor()
        let server = try ShadowControlServer(socketPath: socketPath, provider: { executor }, log: { _ in })
        try server.start()
        defer { server.stop() }
        let result = try Swvmm.run(["shadow", "--vm", socketPath, "--verbose", "--", "uname", "-s"], timeout: 30)
        XCTAssertEqual(result.status, 0, result.summary)
        let line = try XCTUnwrap(result.stderrLines.last { $0.hasPrefix("swvmm: this run: ") }, result.summary)
        let numbers = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        XCTAssertEqual(numbers.count, 4, line)
        guard numbers.count == 4 else { return }
        XCTAssertEqual(numbers[1], 1, "uname -s makes one machine call: \(line)")
        XCTAssertEqual(numbers[0], numbers[1] + numbers[2] + numbers[3], "every call seen is placed once: \(line)")
    }

    func testSIGTERMToTheClientEndsTheCommandLikeGdb() throws {
        let server = try ShadowControlServer(socketPath: socketPath, provider: { LocalExecutor() }, log: { _ in })
        try server.start()
        defer { server.stop() }
        let result = try Swvmm.run(["shadow", "--vm", socketPath, "--", "sleep", "30"], timeout: 20, signal: (SIGTERM, after: 1))
        XCTAssertFalse(result.timedOut, result.summary)
        XCTAssertFalse(result.signaled, result.summary)
        XCTAssertEqual(result.status, 128 + SIGKILL, result.summary)
        XCTAssertEqual(result.stderrLines, ["swvmm: sleep was killed by signal 9 (Killed)"], result.summary)
    }

    func testAServerThatCannotServeSaysWhy() throws {
        struct NoExecutor: Error, CustomStringConvertible {
            var description: String { "native shadow executor not available yet" }
        }
        let server = try ShadowControlServer(socketPath: socketPath, provider: { throw NoExecutor() }, log: { _ in })
        try server.start()
        defer { server.stop() }
        let result = try Swvmm.run(["shadow", "--vm", socketPath, "--", "true"], timeout: 30)
        Swvmm.assertEndedCleanly(result)
        XCTAssertEqual(result.status, 1, result.summary)
        XCTAssertEqual(result.stderrLines, ["swvmm: the VM at \(socketPath) cannot run the command: native shadow executor not available yet"],
                       result.summary)
    }

    func testSwvmmRunShadowServesItsSocketAndRemovesItAtExit() throws {
        try Swvmm.requireBinaryAndKVM()
        // A kernel that spins (jmp $): the VM runs until it is told to stop.
        let kernel = try scratch.file("spin.elf", MicroKernel(code: [0xEB, 0xFE]).elf)
        let vm = VMRun()
        let finished = DispatchSemaphore(value: 0)
        let arguments = ["--kernel", kernel, "--shadow", "--api-socket", socketPath]
        let thread = Thread {
            vm.result = try? Swvmm.run(arguments, timeout: 60, signal: (SIGTERM, after: 6))
            finished.signal()
        }
        thread.start()
        var info = stat()
        for _ in 0..<100 where lstat(socketPath, &info) != 0 { usleep(50_000) }
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFSOCK, "no socket at \(socketPath)")
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        let client = try Swvmm.run(["shadow", "--vm", socketPath, "--", "true"], timeout: 30)
        XCTAssertEqual(client.status, 1, client.summary)
        XCTAssertEqual(client.stderrLines.count, 1, client.summary)
        // A kernel that never sets up its syscall entry: no process to borrow, said at once.
        XCTAssertTrue(client.stderr.contains("cannot run the command: the guest kernel has not set up its system call entry yet"), client.summary)
        finished.wait()
        let result = try XCTUnwrap(vm.result)
        Swvmm.assertEndedCleanly(result)
        XCTAssertTrue(result.stderr.contains("swvmm: shadow control socket \(socketPath)"), result.summary)
        XCTAssertEqual(lstat(socketPath, &info), -1, "the socket outlived swvmm")
    }
}

/// The result of a `swvmm run` on another thread, read after it signalled.
private final class VMRun: @unchecked Sendable {
    var result: Swvmm.Result?
}
