import Foundation
import XCTest

/// Runs the built `swvmm` executable as a child process, the way a user does,
/// and captures what it printed and how it ended.
enum Swvmm {
    /// The package root: this file is `<root>/Tests/EndToEndTests/SwvmmRunner.swift`.
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The binary under test: `$SWVMM_BINARY`, else `<root>/.build/debug/swvmm`
    /// (`swift build --build-tests` builds it, because EndToEndTests depends on the target).
    static var binary: URL {
        if let override = ProcessInfo.processInfo.environment["SWVMM_BINARY"], !override.isEmpty {
            return URL(fileURLWithPath: override)
        }
        return packageRoot.appendingPathComponent(".build/debug/swvmm")
    }

    /// `images/out`, where `make images` writes guest kernels and initramfs.
    static let imagesDirectory = packageRoot.appendingPathComponent("images/out")

    /// The path of image `name`, or an XCTSkip telling how to build it.
    static func image(_ name: String) throws -> String {
        let path = imagesDirectory.appendingPathComponent(name).path
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw XCTSkip("guest image \(name) is missing from images/out: run `make images`")
        }
        return path
    }

    /// Skips unless the binary exists and /dev/kvm can be opened read-write.
    static func requireBinaryAndKVM() throws {
        try requireBinary()
        let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            throw XCTSkip("/dev/kvm is not usable here (\(String(cString: strerror(errno))))")
        }
        close(fd)
    }

    static func requireBinary() throws {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw XCTSkip("swvmm binary not found at \(binary.path): run `swift build` (or set SWVMM_BINARY)")
        }
    }

    /// How one run ended.
    struct Result {
        var arguments: [String]
        var stdout: String
        var stderr: String
        /// Exit status, or the signal number when `signaled`.
        var status: Int32
        /// The process died from a signal (a trap, an abort) instead of exiting.
        var signaled: Bool
        /// The run outlived its timeout and was killed.
        var timedOut: Bool
        var seconds: Double

        /// Non-empty lines of stderr.
        var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }
        var stdoutLines: [String] { stdout.split(whereSeparator: \.isNewline).map(String.init) }

        /// A summary for failure messages: the command, the ending, and the tails of both streams.
        var summary: String {
            let ending = timedOut ? "timed out" : signaled ? "killed by signal \(status)" : "exit status \(status)"
            return """
            swvmm \(arguments.map { $0.count > 80 ? String($0.prefix(80)) + "..." : $0 }.joined(separator: " "))
            -> \(ending) after \(String(format: "%.1f", seconds)) s
            --- stderr (tail) ---
            \(String(stderr.suffix(3000)))
            --- stdout (tail) ---
            \(String(stdout.suffix(3000)))
            """
        }
    }

    /// Where a run keeps its memos unless the test set XDG_CACHE_HOME: this
    /// test process's own directory, not the user's cache, where a memo left
    /// by another run would change which calls a test's run makes.
    static let privateCache = NSTemporaryDirectory() + "swvmm-test-cache-\(getpid())"

    /// This process's environment, XDG_CACHE_HOME as the test set it (read
    /// now: a test may set it for a scenario) or `privateCache`.
    static func runEnvironment() -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_CACHE_HOME"] = getenv("XDG_CACHE_HOME").map { String(cString: $0) } ?? privateCache
        return environment
    }

    /// How long a run that outlived its timeout has after SIGTERM before SIGKILL.
    static let termGrace: TimeInterval = 10

    /// Runs swvmm with `arguments`, stdin from /dev/null, for at most `timeout` seconds
    /// (then SIGTERM, and SIGKILL after `termGrace`). `signal` is sent once after `signalAfter` seconds, if given.
    static func run(_ arguments: [String], timeout: TimeInterval,
                    signal: (number: Int32, after: TimeInterval)? = nil) throws -> Result {
        try requireBinary()
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = runEnvironment()
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err

        let outCollector = PipeCollector(out.fileHandleForReading)
        let errCollector = PipeCollector(err.fileHandleForReading)
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }

        let start = Date()
        try process.run()
        var timedOut = false
        if let signal {
            if finished.wait(timeout: .now() + signal.after) == .timedOut {
                kill(process.processIdentifier, signal.number)
            }
        }
        if finished.wait(timeout: .now() + max(0, timeout - Date().timeIntervalSince(start))) == .timedOut {
            timedOut = true
            // SIGTERM first: swvmm then lets a guest it stopped run again (QEMU
            // keeps a guest paused when its gdbstub's client just vanishes).
            kill(process.processIdentifier, SIGTERM)
            if finished.wait(timeout: .now() + termGrace) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                finished.wait()
            }
        }
        let seconds = Date().timeIntervalSince(start)
        return Result(arguments: arguments,
                      stdout: outCollector.finish(), stderr: errCollector.finish(),
                      status: process.terminationStatus,
                      signaled: process.terminationReason == .uncaughtSignal,
                      timedOut: timedOut, seconds: seconds)
    }

    /// Asserts the run ended by itself with a plain exit (no timeout, no signal, no Swift runtime trap).
    static func assertEndedCleanly(_ result: Result, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(result.timedOut, "swvmm did not finish in time\n\(result.summary)", file: file, line: line)
        XCTAssertFalse(result.signaled, "swvmm died from a signal\n\(result.summary)", file: file, line: line)
        XCTAssertFalse(result.stderr.contains("Fatal error"), "Swift runtime trap\n\(result.summary)", file: file, line: line)
        XCTAssertLessThan(result.status, 128, result.summary, file: file, line: line)
    }
}

/// Drains a pipe on a background thread so a chatty child never blocks on a full pipe.
final class PipeCollector: @unchecked Sendable {
    private var data = Data()
    private let lock = NSLock()
    private let done = DispatchSemaphore(value: 0)
    /// Appended when the pipe was still open after swvmm exited: some other
    /// process (a stray) holds its write end. Tests then fail on it, not hang.
    static let heldOpenMarker = "\n[swvmm-e2e: output pipe still held open by another process after swvmm exited]\n"

    init(_ handle: FileHandle) {
        let thread = Thread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                lock.lock(); data.append(chunk); lock.unlock()
            }
            done.signal()
        }
        thread.start()
    }

    /// Waits for end-of-file (the child and every copy of the write end
    /// closed), at most `seconds` once the child is gone, and returns the text.
    func finish(within seconds: TimeInterval = 10) -> String {
        let complete = done.wait(timeout: .now() + seconds) == .success
        lock.lock(); defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self) + (complete ? "" : Self.heldOpenMarker)
    }
}

/// Temporary files that a test creates and removes.
final class ScratchDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("swvmm-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes `bytes` to a file called `name` and returns its path.
    func file(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = url.appendingPathComponent(name)
        try Data(bytes).write(to: path)
        return path.path
    }
}
