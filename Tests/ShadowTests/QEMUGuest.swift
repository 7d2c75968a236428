import XCTest
import Foundation

/// A kernel-less QEMU/TCG guest (SeaBIOS, 2 vCPUs) with its gdbstub on a unix
/// socket, started under `setpriv --pdeathsig KILL` so it dies with the test
/// process, and killed by `stop()` (call it in tearDown).
final class QEMUGuest {
    static let binary = "/usr/bin/qemu-system-x86_64"
    let directory: URL
    let process = Process()
    var socketPath: String { directory.appendingPathComponent("gdb.sock").path }
    var address: String { "unix:" + socketPath }

    init() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw XCTSkip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw XCTSkip("setpriv (util-linux) is missing: cannot tie QEMU's life to the test's")
        }
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("swvmm-gdb-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--pdeathsig", "KILL", Self.binary,
                             "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "256M",
                             "-nographic", "-no-reboot", "-display", "none", "-monitor", "none", "-serial", "none",
                             "-gdb", "unix:\(socketPath),server=on,wait=off"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: socketPath) {
            guard process.isRunning, Date() < deadline else {
                stop()
                throw XCTSkip("QEMU did not create its gdbstub socket within 10 s")
            }
            usleep(20_000)
        }
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }
}
