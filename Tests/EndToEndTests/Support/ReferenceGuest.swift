import Foundation
import XCTest

/// A reference guest (images/reference-guest.sh): a stock Debian kernel under
/// QEMU/TCG in swvmm.mode=known-state, its console on a socket and its
/// gdbstub on another. QEMU dies with the test process (pdeathsig) and is
/// killed by `stop()`; call it in tearDown.
final class ReferenceGuest {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let readyMarker = "SWVMM-KNOWN-STATE-READY"

    let series: String
    let directory: URL
    let process = Process()
    private(set) var console: SerialConsole!
    var gdbAddress: String { "unix:" + directory.appendingPathComponent("gdb.sock").path }
    /// The kernel release the image was built from (images/out/release-SERIES).
    let release: String

    /// `bench`: boot initramfs-bench-SERIES (reference-guest.sh --bench), whose
    /// /bench/bin holds this host's binaries of the bench's tools.
    init(series: String, bench: Bool = false, bootTimeout: TimeInterval = 180) throws {
        self.series = series
        let out = Self.repository.appendingPathComponent("images/out")
        let script = Self.repository.appendingPathComponent("images/reference-guest.sh")
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") else {
            throw XCTSkip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
        }
        for file in ["bzImage-\(series)", "initramfs\(bench ? "-bench" : "")-\(series).cpio.gz", "release-\(series)"]
        where !FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path) {
            throw XCTSkip("images/out/\(file) is missing: run 'make images'")
        }
        release = (try String(contentsOf: out.appendingPathComponent("release-\(series)"), encoding: .utf8))
            .trimmingCharacters(in: .whitespacesAndNewlines)
        directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("swvmm-ref-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script.path] + (bench ? ["--bench"] : []) + [series, directory.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        do {
            let serial = directory.appendingPathComponent("serial.sock").path
            let deadline = Date().addingTimeInterval(20)
            while !FileManager.default.fileExists(atPath: serial) {
                guard process.isRunning, Date() < deadline else { throw SerialConsoleError.io("QEMU did not create \(serial)") }
                usleep(50_000)
            }
            console = try SerialConsole(socketPath: serial, timeout: 10)
            try console.read(until: Self.readyMarker, timeout: bootTimeout)
            // Let the shell start, and check it answers.
            _ = try console.run("echo ready", timeout: 60)
        } catch {
            stop()
            throw error
        }
    }

    /// Boots a reference guest, and once more should the first die before it
    /// is ready (QEMU/TCG's multi-vCPU boot race, shared/PLATFORM.md), saying so.
    static func booting(series: String, bench: Bool = false) throws -> ReferenceGuest {
        do {
            return try ReferenceGuest(series: series, bench: bench)
        } catch let error as SerialConsoleError {
            print("ReferenceGuest: the \(series) guest died before it was ready (\(error)); booting it once more")
            return try ReferenceGuest(series: series, bench: bench)
        }
    }

    /// The console socket's path (QEMU serves one client at a time).
    var consolePath: String { directory.appendingPathComponent("serial.sock").path }

    /// The last lines of the console's log (reference-guest.sh writes it
    /// beside the sockets, or in $REFERENCE_GUEST_LOG_DIR), for a failure message.
    func consoleTail(lines: Int = 40) -> String {
        let folder = ProcessInfo.processInfo.environment["REFERENCE_GUEST_LOG_DIR"].map { URL(fileURLWithPath: $0) } ?? directory
        let log = try? String(contentsOf: folder.appendingPathComponent("console.log"), encoding: .utf8)
        return log.map { $0.split(whereSeparator: \.isNewline).suffix(lines).joined(separator: "\n") } ?? "(no console log)"
    }

    /// Lets go of the console, so that another client (swvmm bench) can have it.
    func releaseConsole() { console = nil }

    /// Runs a shell command on the guest's console: what it printed (each line
    /// ending in "\n") and its exit status.
    func run(_ command: String, timeout: TimeInterval = 30) throws -> (output: String, status: Int32) {
        var lines = try console.run("\(command); echo \"SWVMM-STATUS=$?\"", timeout: timeout)
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let last = lines.popLast(), last.hasPrefix("SWVMM-STATUS="),
              let status = Int32(last.dropFirst("SWVMM-STATUS=".count)) else {
            throw SerialConsoleError.io("no exit status after '\(command)'")
        }
        return (lines.map { $0 + "\n" }.joined(), status)
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }
}
