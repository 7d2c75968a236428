import Glibc
import XCTest
@testable import Shadow

/// What a command printed and how it ended.
struct CommandOutput {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// A temporary file opened read/write, removed on close.
final class TemporaryFile {
    let fd: Int32
    let path: String

    init() throws {
        var template = Array("/tmp/swvmm-supervisor-test-XXXXXX".utf8CString)
        fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw SupervisorError.systemCall("mkstemp", errno: errno) }
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit {
        close(fd)
        unlink(path)
    }

    func contents() -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var offset: off_t = 0
        while true {
            let n = pread(fd, &buffer, buffer.count, offset)
            if n <= 0 { break }
            bytes += buffer[0..<n]
            offset += off_t(n)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

enum SupervisorHarness {
    /// `ps -e -o pid,comm` output reduced to what a shared, busy host keeps
    /// stable between two runs: the early pids (≤ 60, kernel threads), with
    /// kworkers' current-work suffix dropped.
    static func stableEarlyProcesses(_ text: String) -> String {
        text.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ", maxSplits: 1)
            guard fields.count == 2, let pid = Int(fields[0]), pid <= 60 else { return nil }
            return "\(pid) \(fields[1].split(separator: "-").first ?? "")"
        }.joined(separator: "\n")
    }

    static var environment: [String] {
        ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG=C", "LC_ALL=C", "COLUMNS=200", "TERM=dumb"]
    }

    /// Runs `arguments` under a supervisor with a LocalExecutor (the guest
    /// executor is the only stand-in: calls "redirected to the guest" run on
    /// this host, in this process).
    static func shadow(_ arguments: [String], configuration: SupervisorConfiguration = SupervisorConfiguration(diagnostic: { _ in }),
                       executor: GuestSyscallExecutor = LocalExecutor(),
                       extraEnvironment: [String] = []) throws -> (CommandOutput, Supervisor) {
        let out = try TemporaryFile(), err = try TemporaryFile()
        let supervisor = Supervisor(executor: executor, configuration: configuration)
        let exit = try supervisor.run(arguments: arguments, environment: environment + extraEnvironment, stdio: [-1, out.fd, err.fd])
        return (CommandOutput(status: exit.shellStatus, stdout: out.contents(), stderr: err.contents()), supervisor)
    }

    /// Runs `arguments` directly (posix_spawnp), for comparison.
    static func direct(_ arguments: [String]) throws -> CommandOutput {
        let out = try TemporaryFile(), err = try TemporaryFile()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, out.fd, 1)
        posix_spawn_file_actions_adddup2(&actions, err.fd, 2)
        var pid: pid_t = 0
        let rc = withCStrings(arguments) { argv in
            withCStrings(environment) { envp in
                posix_spawnp(&pid, arguments[0], &actions, nil, argv.map { UnsafePointer($0) }.map { UnsafeMutablePointer(mutating: $0) }!, envp.map { UnsafeMutablePointer(mutating: $0) }!)
            }
        }
        guard rc == 0 else { throw SupervisorError.systemCall("posix_spawnp \(arguments[0])", errno: rc) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return CommandOutput(status: code, stdout: out.contents(), stderr: err.contents())
    }
}

/// Runs `body` with a `[UInt8]` buffer in this process and its address.
func withBuffer<R>(_ count: Int, fill: UInt8 = 0xAA, _ body: (UInt64, UnsafeMutableRawBufferPointer) throws -> R) throws -> R {
    let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
    defer { raw.deallocate() }
    raw.initializeMemory(as: UInt8.self, repeating: fill)
    return try body(UInt64(UInt(bitPattern: raw.baseAddress)), raw)
}
