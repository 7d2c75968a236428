import Glibc
import Guest

/// A child process started with posix_spawn whose stdout the parent reads.
struct ChildProcess {
    let pid: pid_t
    private let stdoutRead: Int32

    enum SpawnError: Error, CustomStringConvertible {
        case failed(path: String, errno: Int32)
        var description: String {
            if case let .failed(path, code) = self { return "cannot start \(path): \(errnoText(code))" }
            return "cannot start a child process"
        }
    }

    /// Starts `path` with `arguments` (argv[0] is `path`); stdin and stderr go to /dev/null.
    static func spawn(_ path: String, _ arguments: [String]) throws -> ChildProcess {
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { throw SpawnError.failed(path: path, errno: errno) }
        // Only the child's stdout (a dup2 copy, which does not inherit the flag) may outlive exec.
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], STDOUT_FILENO)
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, nil, argv, environ)
        close(pipeFDs[1])
        guard result == 0 else {
            close(pipeFDs[0])
            throw SpawnError.failed(path: path, errno: result)
        }
        return ChildProcess(pid: pid, stdoutRead: pipeFDs[0])
    }

    /// Reads the child's stdout until `marker` appears (returning the
    /// monotonic time it was read, and the output so far) or `deadline`
    /// (monotonic nanoseconds) passes or the output ends (nil).
    func read(until marker: String, deadline: UInt64) -> (time: UInt64?, output: [UInt8]) {
        var bytes: [UInt8] = []
        let needle = Array(marker.utf8)
        var chunk = [UInt8](repeating: 0, count: 4096)
        while monotonicNanoseconds() < deadline {
            var poller = pollfd(fd: stdoutRead, events: Int16(POLLIN), revents: 0)
            let remaining = Int32(min(1000, (deadline - monotonicNanoseconds()) / 1_000_000 + 1))
            guard poll(&poller, 1, remaining) >= 0 || errno == EINTR else { break }
            guard poller.revents != 0 else { continue }
            let count = chunk.withUnsafeMutableBytes { Glibc.read(stdoutRead, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            let searchFrom = max(0, bytes.count - needle.count)
            bytes.append(contentsOf: chunk[0..<count])
            if bytes[searchFrom...].firstRange(of: needle) != nil { return (monotonicNanoseconds(), bytes) }
        }
        return (nil, bytes)
    }

    /// Sends `signal` to the child.
    func signal(_ signal: Int32) {
        _ = kill(pid, signal)
    }

    /// Reads the child's stdout to EOF (bounded), waits for it, and returns
    /// its output and wait status.
    func finish(limit: Int = 1 << 20) -> (output: String, status: Int32) {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(stdoutRead, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        close(stdoutRead)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (String(decoding: bytes, as: UTF8.self), status)
    }
}
