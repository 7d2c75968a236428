import Foundation
import XCTest

/// A long-lived KVM host the test talks to while it runs: guests booted
/// there by swvmm, their consoles typed on and read, commands run there
/// (kvm-host-bridge.sh explains the files they go through). Unlike
/// `KVMHost.run(batch:)`, the test decides each step from what the last one
/// showed, as the shadow tool checks need.
final class KVMHostBridge {
    static let script = Swvmm.packageRoot.appendingPathComponent("Tests/EndToEndTests/Support/kvm-host-bridge.sh")

    struct Failure: Error, CustomStringConvertible { var description: String }
    /// How a failure says the KVM host itself (the L1) is gone.
    static let hostEnded = "the KVM host ended"
    /// Names a folder where each bridge's files are kept when it stops.
    static let keepLogsVariable = "SWVMM_KEEP_BRIDGE_LOGS"

    /// What a command run in the KVM host gave.
    struct Result {
        var stdout: String
        var stderr: String
        var status: Int32
        var summary: String { "status \(status)\n--- stdout ---\n\(stdout.suffix(3000))\n--- stderr ---\n\(stderr.suffix(3000))" }
    }

    let scratch: URL
    let directory: URL
    private let host = Process()
    private var next = 0
    /// The running guest's console log, and how much of it was consumed.
    private var consoleLog: URL?
    private var consumed = 0

    /// Starts the KVM host (the L1 boots in about 10 s) and waits for the bridge.
    init(memory: String = "3G", timeout: TimeInterval = 1500) throws {
        try KVMHost.requireAvailable()
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("swvmm-bridge-\(UUID().uuidString.prefix(8))")
        directory = scratch.appendingPathComponent("bridge")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        host.executableURL = KVMHost.script
        host.arguments = ["--memory", memory, "--timeout", String(Int(timeout)), "--scratch", scratch.path,
                          "--", "/bin/bash", Self.script.path, directory.path]
        host.currentDirectoryURL = Swvmm.packageRoot
        host.standardOutput = FileHandle.nullDevice
        host.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try host.run()
        try waitFor(directory.appendingPathComponent("ready"), timeout: 240, what: "the KVM host's bridge")
    }

    deinit { stop() }

    /// Ends the bridge (and any guest) and the KVM host.
    func stop() {
        if host.isRunning {
            _ = try? request("quit", "", timeout: 30)
            let deadline = Date().addingTimeInterval(30)
            while host.isRunning, Date() < deadline { usleep(100_000) }
            if host.isRunning { host.terminate() }
            host.waitUntilExit()
        }
        // For a failure to look into: the consoles, swvmm's stderr and every command's output.
        if let keep = ProcessInfo.processInfo.environment[Self.keepLogsVariable], !keep.isEmpty {
            let copy = URL(fileURLWithPath: keep).appendingPathComponent(scratch.lastPathComponent)
            try? FileManager.default.createDirectory(at: copy.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? FileManager.default.copyItem(at: scratch, to: copy)
        }
        try? FileManager.default.removeItem(at: scratch)
    }

    /// The L1's console (for failure messages).
    var l1Console: String {
        let control = scratch.appendingPathComponent(".kvm-host")
        let console = (try? String(contentsOf: control.appendingPathComponent("console.log"), encoding: .utf8)).map { String($0.suffix(2000)) } ?? ""
        // images/kvm-host.sh has QEMU log the L1's resets: a triple fault ends it silently.
        let resets = (try? String(contentsOf: control.appendingPathComponent("qemu-resets.log"), encoding: .utf8)) ?? ""
        return resets.contains("Triple fault") ? console + "\n(the L1 triple-faulted: QEMU logged it)" : console
    }

    // MARK: requests

    @discardableResult
    private func request(_ kind: String, _ body: String, timeout: TimeInterval) throws -> Int {
        let number = next
        next += 1
        let staging = directory.appendingPathComponent("req/.\(number).tmp")
        try body.write(to: staging, atomically: false, encoding: .utf8)
        try FileManager.default.moveItem(at: staging, to: directory.appendingPathComponent("req/\(number).\(kind)"))
        let answer = kind == "type" ? "\(number).done" : "\(number).rc"
        try waitFor(directory.appendingPathComponent("resp/\(answer)"), timeout: timeout, what: "the bridge's answer to \(kind) \(number)")
        return number
    }

    private func waitFor(_ file: URL, timeout: TimeInterval, what: String) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !FileManager.default.fileExists(atPath: file.path) {
            guard host.isRunning else { throw Failure(description: "\(Self.hostEnded) while waiting for \(what)\n\(l1Console)") }
            guard Date() < deadline else { throw Failure(description: "no \(what) within \(Int(timeout)) s") }
            usleep(50_000)
        }
    }

    private func text(_ file: String) -> String {
        (try? String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)) ?? ""
    }

    /// Runs `script` with bash in the KVM host and waits for it.
    func exec(_ script: String, timeout: TimeInterval = 300) throws -> Result {
        let number = try request("exec", script, timeout: timeout)
        return result(of: number)
    }

    /// Starts `script` in the KVM host without waiting; `result(of:)` collects it.
    func start(_ script: String) throws -> Int {
        let number = next
        next += 1
        let staging = directory.appendingPathComponent("req/.\(number).tmp")
        try script.write(to: staging, atomically: false, encoding: .utf8)
        try FileManager.default.moveItem(at: staging, to: directory.appendingPathComponent("req/\(number).exec"))
        return number
    }

    /// Waits for a script started with `start(_:)`.
    func wait(for number: Int, timeout: TimeInterval = 300) throws -> Result {
        try waitFor(directory.appendingPathComponent("resp/\(number).rc"), timeout: timeout, what: "command \(number)")
        return result(of: number)
    }

    /// Waits until a script started with `start(_:)` has written `text` to its stdout (it may still run).
    func waitForOutput(of number: Int, containing text: String, timeout: TimeInterval = 120) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !self.text("resp/\(number).out").contains(text) {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("resp/\(number).rc").path) {
                throw Failure(description: "command \(number) ended without printing '\(text)': \(result(of: number).summary)")
            }
            guard host.isRunning else { throw Failure(description: "\(Self.hostEnded) while waiting for output of command \(number)\n\(l1Console)") }
            guard Date() < deadline else { throw Failure(description: "no '\(text)' from command \(number) within \(Int(timeout)) s") }
            usleep(100_000)
        }
    }

    private func result(of number: Int) -> Result {
        let status = Int32(text("resp/\(number).rc").trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        return Result(stdout: text("resp/\(number).out"), stderr: text("resp/\(number).err"), status: status)
    }

    // MARK: the guest

    /// Boots a guest with `arguments` to swvmm (the binary is prepended);
    /// `prefix` goes before it (e.g. setpriv to run it as another user).
    func boot(_ arguments: [String], prefix: [String] = []) throws {
        let words = (prefix + [Swvmm.binary.path] + arguments).map(Self.quoted)
        let number = try request("boot", words.joined(separator: " "), timeout: 60)
        consoleLog = directory.appendingPathComponent("console-\(number).log")
        stderrLog = directory.appendingPathComponent("swvmm-\(number).err")
        consumed = 0
    }

    /// `word` quoted for bash.
    static func quoted(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// The running (or last) guest's swvmm stderr.
    var swvmmStderr: String { stderrLog.flatMap { try? String(contentsOf: $0, encoding: .utf8) } ?? "" }
    private var stderrLog: URL?

    /// Sends SIGTERM to the guest's swvmm and returns its exit status.
    func stopGuest(timeout: TimeInterval = 120) throws -> Int32 {
        let number = try request("stop", "", timeout: timeout)
        return result(of: number).status
    }

    /// Types `text` on the guest's console.
    func type(_ text: String) throws {
        try request("type", text, timeout: 30)
    }

    /// Reads the console until `marker` and returns what came up to it (consumed).
    @discardableResult
    func read(until marker: String, timeout: TimeInterval) throws -> String {
        guard let consoleLog else { throw Failure(description: "no guest booted") }
        let needle = Data(marker.utf8)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let data = (try? Data(contentsOf: consoleLog)) ?? Data()
            if data.count > consumed, let range = data[consumed...].range(of: needle) {
                let text = String(decoding: data[consumed ..< range.upperBound], as: UTF8.self)
                consumed = range.upperBound
                return text
            }
            guard host.isRunning else { throw Failure(description: "\(Self.hostEnded) while reading the console for '\(marker)'\n\(l1Console)") }
            guard Date() < deadline else {
                throw Failure(description: "no '\(marker)' on the console in \(Int(timeout)) s; last output: \(String(decoding: data.suffix(600), as: UTF8.self))\n--- swvmm stderr ---\n\(swvmmStderr.suffix(1500))")
            }
            usleep(100_000)
        }
    }
}

/// The KVM host's guest console behaves like a reference guest's: the same
/// ground-truth helpers (ShadowToolSupport.swift) read it.
extension KVMHostBridge: GuestConsole {
    func run(_ command: String, timeout: TimeInterval = 60) throws -> (output: String, status: Int32) {
        let id = UUID().uuidString.prefix(8)
        // The marker typed split in two, so the echo of the command never matches it.
        try type("\(command); echo \"S\"\"TATUS-\(id)=$?\"\n")
        let text = try read(until: "STATUS-\(id)=", timeout: timeout)
        let statusLine = try read(until: "\n", timeout: 10)
        guard let status = Int32(statusLine.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw Failure(description: "no status after '\(command)': \(statusLine)")
        }
        var lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .map { String(decoding: $0.filter { $0 != UInt8(ascii: "\r") }, as: UTF8.self) }
        if let echo = lines.lastIndex(where: { $0.contains("TATUS-\(id)=$?\"") }) { lines.removeSubrange(...echo) }
        if !lines.isEmpty { lines.removeLast() }
        return (lines.map { $0 + "\n" }.joined(), status)
    }
}
