import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A stock Debian kernel booted under QEMU/TCG in `swvmm.mode=known-state`
/// by `images/reference-guest.sh`: the ground truth the shadow-context tests
/// compare against. Commands typed on its serial console return their output.
final class ReferenceGuest {
    enum Failure: Error, CustomStringConvertible {
        case unavailable(String)
        case system(String, Int32)
        case timeout(String, transcript: String)

        var description: String {
            switch self {
            case .unavailable(let why): return "reference guest unavailable: \(why)"
            case .system(let what, let code): return "\(what): \(String(cString: strerror(code)))"
            case .timeout(let what, let transcript):
                return "timed out waiting for \(what); console so far:\n\(transcript.suffix(2000))"
            }
        }
    }

    static let readyMarker = "SWVMM-KNOWN-STATE-READY"
    static let prompt = "swvmm-guest# "

    /// The repository root, found from this file's place in Tests/EndToEndTests.
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var imagesOut: URL { repositoryRoot.appendingPathComponent("images/out") }

    /// Why a guest of this series cannot start here, or nil when it can.
    static func unavailableReason(series: String) -> String? {
        let fm = FileManager.default
        for name in ["bzImage-\(series)", "initramfs-\(series).cpio.gz", "release-\(series)"] {
            if !fm.fileExists(atPath: imagesOut.appendingPathComponent(name).path) {
                return "images/out/\(name) missing: run `make images`"
            }
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let hasQEMU = path.split(separator: ":").contains {
            fm.isExecutableFile(atPath: "\($0)/qemu-system-x86_64")
        }
        return hasQEMU ? nil : "qemu-system-x86_64 not found: install qemu-system-x86 (make setup)"
    }

    /// The kernel release the image was built from (`uname -r` in the guest).
    static func release(series: String) throws -> String {
        try String(contentsOf: imagesOut.appendingPathComponent("release-\(series)"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    let series: String
    let workDirectory: URL
    var serialSocket: String { workDirectory.appendingPathComponent("serial.sock").path }
    var gdbSocket: String { workDirectory.appendingPathComponent("gdb.sock").path }
    private let qemu = Process()
    private var console: Int32 = -1
    private var received = ""

    /// Starts QEMU and waits until the known state is ready and the shell prompts.
    init(series: String, bootTimeout: TimeInterval = 90) throws {
        if let why = Self.unavailableReason(series: series) { throw Failure.unavailable(why) }
        self.series = series
        var template = Array((NSTemporaryDirectory() + "/swvmm-refguest-XXXXXX").utf8CString)
        guard mkdtemp(&template) != nil else { throw Failure.system("mkdtemp", errno) }
        workDirectory = URL(fileURLWithPath: String(cString: template))

        qemu.executableURL = Self.repositoryRoot.appendingPathComponent("images/reference-guest.sh")
        qemu.arguments = [series, workDirectory.path]
        let log = workDirectory.appendingPathComponent("qemu.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: log)
        qemu.standardOutput = logHandle
        qemu.standardError = logHandle
        qemu.standardInput = FileHandle.nullDevice
        do {
            try qemu.run()
            try connectConsole(deadline: Date().addingTimeInterval(15))
            try waitFor(Self.readyMarker, deadline: Date().addingTimeInterval(bootTimeout))
            try waitFor(Self.prompt, deadline: Date().addingTimeInterval(15))
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    /// Runs a shell command in the guest and returns what it printed (carriage
    /// returns and the shell's terminal queries removed) and its exit status.
    func run(_ command: String, timeout: TimeInterval = 20) throws -> (output: String, status: Int32) {
        received = ""
        // The marker as echoed on the console has `=""=` in it; only the
        // command's own output has `==SWVMM==END==`.
        try send("\(command); echo \"==SWVMM=\"\"=END==$?\"\n")
        let end = try waitFor(#"==SWVMM==END==(\d+)\r?\n"#, regex: true, deadline: Date().addingTimeInterval(timeout))
        let text = clean(String(received[..<end.lowerBound]))
        // Drop the echoed command line.
        let output = text.firstIndex(of: "\n").map { String(text[text.index(after: $0)...]) } ?? ""
        let statusText = received[end].drop(while: { !$0.isNumber }).prefix(while: { $0.isNumber })
        try waitFor(Self.prompt, deadline: Date().addingTimeInterval(5))
        return (output, Int32(statusText) ?? -1)
    }

    /// Stops QEMU and removes the work directory. Safe to call twice.
    func stop() {
        if console >= 0 { close(console); console = -1 }
        if qemu.isRunning {
            qemu.terminate()
            qemu.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: workDirectory)
    }

    private func clean(_ text: String) -> String {
        text.replacingOccurrences(of: "\u{1B}[6n", with: "").replacingOccurrences(of: "\r", with: "")
    }

    private func connectConsole(deadline: Date) throws {
        while true {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure.system("socket", errno) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let path = Array(serialSocket.utf8CString)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: path.prefix(raw.count - 1).map { UInt8(bitPattern: $0) })
            }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            if connected == 0 { console = fd; return }
            let code = errno
            close(fd)
            if !qemu.isRunning { throw Failure.unavailable("QEMU exited early; see its log in \(workDirectory.path)") }
            if Date() > deadline { throw Failure.system("connect \(serialSocket)", code) }
            usleep(50_000)
        }
    }

    private func send(_ text: String) throws {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(console, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw Failure.system("write to guest console", errno) }
            bytes = bytes.dropFirst(n)
        }
    }

    /// Reads the console until `pattern` appears in what was received since
    /// the last `run`; returns the range of the match.
    @discardableResult
    private func waitFor(_ pattern: String, regex: Bool = false, deadline: Date) throws -> Range<String.Index> {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var pending = [UInt8]()
        while true {
            let found = regex ? received.range(of: pattern, options: .regularExpression) : received.range(of: pattern)
            if let found { return found }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { throw Failure.timeout(pattern, transcript: received) }
            var pfd = pollfd(fd: console, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(left, 1) * 1000))
            if ready < 0 { if errno == EINTR { continue }; throw Failure.system("poll", errno) }
            if ready == 0 { continue }
            let n = read(console, &buffer, buffer.count)
            if n < 0 { if errno == EINTR { continue }; throw Failure.system("read guest console", errno) }
            if n == 0 { throw Failure.timeout("\(pattern) (console closed)", transcript: received) }
            pending += buffer[..<n]
            // Keep an incomplete UTF-8 sequence for the next read.
            if let text = String(validating: pending, as: UTF8.self) {
                received += text
                pending.removeAll()
            } else if pending.count > 8 {
                received += String(decoding: pending, as: UTF8.self)
                pending.removeAll()
            }
        }
    }
}
