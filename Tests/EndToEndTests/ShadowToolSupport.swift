import Foundation
import XCTest

/// A process that exists only on the host, with a distinctive name: a copy
/// of /bin/sleep called `swvmm-hm-XXXXXX` (15 characters, so the whole name
/// fits in the kernel's comm and every tool prints it whole).
final class HostMarker {
    let name: String
    let directory: URL
    let process = Process()
    var pid: Int32 { process.processIdentifier }

    init() throws {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        name = "swvmm-hm-" + String((0 ..< 6).map { _ in letters.randomElement()! })
        directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("swvmm-marker-\(getpid())-\(name)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let binary = directory.appendingPathComponent(name)
        try FileManager.default.copyItem(atPath: "/bin/sleep", toPath: binary.path)
        process.executableURL = binary
        process.arguments = ["3600"]
        try process.run()
    }

    func stop() {
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Host processes whose command line contains `token` (a scan of
/// /proc/*/cmdline, the same as `pgrep -f` with a literal pattern), this
/// test process excluded.
func hostProcesses(containing token: String) -> [(pid: Int32, commandLine: String)] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry -> (Int32, String)? in
        guard let pid = Int32(entry), pid != getpid(),
              let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"), !data.isEmpty else { return nil }
        let line = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
        return line.contains(token) ? (pid, line) : nil
    }
}

/// Runs a host command directly (no swvmm), for the host's own view.
func runOnHost(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    let collector = PipeCollector(out.fileHandleForReading)
    try process.run()
    process.waitUntilExit()
    return collector.finish()
}

/// `Swvmm.run` on another thread, for faults injected while it runs.
final class BackgroundSwvmm: @unchecked Sendable {
    private var result: Result<Swvmm.Result, Error>?
    private let done = DispatchSemaphore(value: 0)

    init(_ arguments: [String], timeout: TimeInterval) {
        let thread = Thread { [self] in
            result = Result { try Swvmm.run(arguments, timeout: timeout) }
            done.signal()
        }
        thread.start()
    }

    func wait() throws -> Swvmm.Result {
        done.wait()
        return try result!.get()
    }
}

/// A guest's console: a shell command typed there, its output and status.
protocol GuestConsole {
    func run(_ command: String, timeout: TimeInterval) throws -> (output: String, status: Int32)
}

extension ReferenceGuest: GuestConsole {}

/// The guest's console, with the parsers the ground truth needs.
extension GuestConsole {
    /// Output of a console command that must succeed.
    func text(_ command: String, timeout: TimeInterval = 30) throws -> String {
        let (output, status) = try run(command, timeout: timeout)
        guard status == 0 else { throw SerialConsoleError.io("'\(command)' failed with status \(status): \(output)") }
        return output
    }

    /// pid → (state, ppid) of every guest process, read from /proc/PID/stat
    /// (the fields after the last ')', so a comm with spaces cannot shift them).
    func processTable() throws -> [Int: Int] {
        let out = try text("for d in /proc/[0-9]*; do s=$(cat $d/stat 2>/dev/null) && echo \"${d#/proc/} ${s##*) }\"; done")
        var table: [Int: Int] = [:]
        for line in out.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count >= 3, let pid = Int(f[0]), let ppid = Int(f[2]) { table[pid] = ppid }
        }
        return table
    }

    /// pid → comm from busybox `ps -o pid,comm`.
    func psComm() throws -> [Int: String] {
        var table: [Int: String] = [:]
        for line in try text("ps -o pid,comm").split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", maxSplits: 1)
            if f.count == 2, let pid = Int(f[0]) { table[pid] = f[1].trimmingCharacters(in: .whitespaces) }
        }
        return table
    }

    /// The entries of the guest's /proc/PID/fd.
    func fds(of pid: Int) throws -> [String] {
        try text("ls /proc/\(pid)/fd").split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init).sorted()
    }

    /// The console still answers within `timeout` (the guest runs).
    func answers(timeout: TimeInterval = 30) -> Bool {
        (try? text("echo alive-$((6*7))", timeout: timeout).contains("alive-42")) ?? false
    }
}

/// Parsers of the tools' output.
enum ToolOutput {
    /// Non-empty lines.
    static func lines(_ text: String) -> [Substring] { text.split(whereSeparator: \.isNewline) }

    /// Whitespace-separated fields of a line.
    static func fields<S: StringProtocol>(_ line: S) -> [Substring] {
        line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { Substring($0) }
    }

    /// pid → second column for a `PID NAME` table (header skipped).
    static func pidTable(_ text: String) -> [Int: String] {
        var table: [Int: String] = [:]
        for line in lines(text).dropFirst() {
            let f = fields(line)
            if f.count >= 2, let pid = Int(f[0]) { table[pid] = String(f[1]) }
        }
        return table
    }

    /// Every number alone on a line (ls /proc).
    static func numericLines(_ text: String) -> Set<Int> {
        Set(lines(text).compactMap { Int($0.trimmingCharacters(in: .whitespaces)) })
    }

    /// The parent of each `name(pid)` node of a `pstree -p` drawing.
    ///
    /// A node's name starts 3 columns after its parent's ")": after "-+-" or
    /// "---" on the parent's line, or after "|-"/"`-" under the parent's
    /// "+". Nodes printed between a parent and a later child are all deeper
    /// (further right), so the parent is the latest node ending there.
    static func pstreeParents(_ text: String) -> [Int: Int] {
        var parents: [Int: Int] = [:]
        var nodes: [(end: Int, pid: Int)] = []
        for line in lines(text) {
            let chars = Array(line)
            var i = 0
            while i < chars.count, chars[i] == " " || chars[i] == "|" || chars[i] == "`" { i += 1 }
            if i > 0, i < chars.count, chars[i] == "-" { i += 1 }
            while i < chars.count {
                let start = i
                // The node ends at the first "(digits)".
                var pid: Int?
                var j = i
                while j < chars.count {
                    if chars[j] == "(", let close = chars[j...].firstIndex(of: ")"), close > j + 1,
                       let value = Int(String(chars[(j + 1) ..< close])) {
                        pid = value
                        j = close + 1
                        break
                    }
                    j += 1
                }
                guard let pid else { break }
                if let parent = nodes.last(where: { $0.end == start - 3 }) { parents[pid] = parent.pid }
                nodes.append((j, pid))
                i = j + 3   // "---" or "-+-"
            }
        }
        return parents
    }

    /// Minutes of uptime in procps `uptime`: "up 5 min", "up 1:05", "up 2 days, 1:05", "up 3 days,  5 min".
    static func uptimeMinutes(_ text: String) -> Int? {
        guard let up = text.range(of: " up ") else { return nil }
        let rest = text[up.upperBound...]
        var minutes = 0
        var body = rest.prefix { $0 != "u" && $0 != "l" }   // stop at "user(s)" / "load average"
        if let comma = body.range(of: "day") {
            guard let days = Int(body[..<comma.lowerBound].trimmingCharacters(in: .whitespaces)) else { return nil }
            minutes += days * 1440
            body = body[comma.upperBound...].drop { $0 != "," }.dropFirst()
        }
        let part = body.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        if part.hasSuffix("min"), let m = Int(part.dropLast(3).trimmingCharacters(in: .whitespaces)) {
            return minutes + m
        }
        let hm = part.split(separator: ":")
        if hm.count == 2, let h = Int(hm[0]), let m = Int(hm[1]) { return minutes + h * 60 + m }
        return nil
    }

    /// mount point → (filesystem, 1K-blocks) of a `df`.
    static func dfMounts(_ text: String) -> [String: (filesystem: String, blocks: Int)] {
        var table: [String: (String, Int)] = [:]
        for line in lines(text).dropFirst() {
            let f = fields(line)
            if f.count >= 6, let blocks = Int(f[1]) { table[String(f[f.count - 1])] = (String(f[0]), blocks) }
        }
        return table
    }
}
