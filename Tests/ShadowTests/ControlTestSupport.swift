import Glibc
import Guest
import Synchronization
import XCTest
@testable import Shadow

/// A private temporary directory for control sockets, removed (with what is left in it) on deinit.
final class TemporarySocketDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/swvmm-control-test-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw SupervisorError.systemCall("mkdtemp", errno: errno)
        }
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    var socketPath: String { path + "/vm.sock" }

    deinit {
        for name in ["vm.sock", "swvmm/vm.sock"] { unlink(path + "/" + name) }
        rmdir(path + "/swvmm")
        rmdir(path)
    }
}

/// Lines collected from another thread.
final class LineLog: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

/// What one client run gave.
struct ClientRun {
    var exit: InspectorExit?
    /// The server's report of the run (nil when it failed or none came).
    var report: RunReport?
    var error: Error?
    var output: CommandOutput
    var diagnostics: [String]
}

enum ControlHarness {
    /// A server on `path` whose executor is a LocalExecutor: this machine has
    /// no guest for these tests, so "guest" calls run on this host and each
    /// tool's output must equal running it directly. The server, the
    /// client, the socket, the fd passing and the supervisor are the real ones.
    static func server(at path: String, executor: GuestSyscallExecutor = LocalExecutor(), log: LineLog = LineLog(),
                       provider: ShadowControlServer.ExecutorProvider? = nil,
                       stopShadow: ShadowControlServer.ShadowStopper? = nil) throws -> ShadowControlServer {
        let server = try ShadowControlServer(socketPath: path, configuration: SupervisorConfiguration(),
                                             provider: provider ?? { executor }, stopShadow: stopShadow, log: { log.append($0) })
        try server.start()
        return server
    }

    /// Runs `arguments` through the client at `path`, stdout and stderr captured.
    static func client(at path: String, _ arguments: [String], request: InspectorRequest? = nil,
                       client: ShadowControlClient? = nil) -> ClientRun {
        let diagnostics = LineLog()
        guard let out = try? TemporaryFile(), let err = try? TemporaryFile() else {
            return ClientRun(error: SupervisorError.systemCall("mkstemp", errno: errno), output: CommandOutput(status: -1, stdout: "", stderr: ""), diagnostics: [])
        }
        var run = ClientRun(output: CommandOutput(status: -1, stdout: "", stderr: ""), diagnostics: [])
        do {
            let c = try client ?? ShadowControlClient(socketPath: path)
            let result = try c.run(request: request ?? InspectorRequest(command: arguments[0]), arguments: arguments,
                                   environment: SupervisorHarness.environment, stdio: [-1, out.fd, err.fd],
                                   diagnostic: { diagnostics.append($0) })
            run.exit = result.exit
            run.report = result.report
        } catch {
            run.error = error
        }
        run.output = CommandOutput(status: run.exit?.shellStatus ?? -1, stdout: out.contents(), stderr: err.contents())
        run.diagnostics = diagnostics.all
        return run
    }

    /// Whether process `id` (or, negative, a member of process group -id)
    /// still runs after up to 2 s. A killed orphan stays a zombie until
    /// init reaps it, which some containers' init never does: a zombie is
    /// dead, and does not count.
    static func stillExists(_ id: Int32) -> Bool {
        for _ in 0..<40 {
            guard Glibc.kill(id, 0) == 0 || errno == EPERM, hasLiveMember(id) else { return false }
            usleep(50_000)
        }
        return true
    }

    /// Scans /proc/PID/stat (state, then ppid, then pgrp after the command
    /// name, proc(5)) for a process of `id` that is not a zombie.
    private static func hasLiveMember(_ id: Int32) -> Bool {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry), id > 0 ? pid == id : true,
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2 else { continue }
            if id < 0, Int32(fields[2]) != -id { continue }
            if fields[0] != "Z" { return true }
        }
        return false
    }
}

/// A guest executor whose every call fails, as a guest that went away would.
final class FailingExecutor: GuestSyscallExecutor {
    let regionAddress: UInt64 = 0x10000
    let regionSize = 4096
    func writeRegion(offset: Int, _ bytes: [UInt8]) throws {}
    func readRegion(offset: Int, count: Int) throws -> [UInt8] { [UInt8](repeating: 0, count: count) }
    func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 {
        throw ShadowError.guestGone(during: "a test's redirected call")
    }
}
