import CShadow
import Glibc
import Synchronization

/// How the inspector ended.
public enum InspectorExit: Equatable, Sendable {
    /// exit(status).
    case exited(Int32)
    /// Killed by a signal.
    case signaled(Int32)

    /// The status a shell would report: the exit code, or 128 + signal.
    public var shellStatus: Int32 {
        switch self {
        case .exited(let code): return code
        case .signaled(let signal): return 128 + signal
        }
    }
}

/// A command started under a seccomp filter, with its listener and pidfd.
public final class InspectorProcess: SupervisedInspector {
    /// The inspector's pid.
    public let pid: Int32
    /// The seccomp notification listener (owned; closed on deinit).
    public let listener: Int32
    /// A pidfd for the inspector (owned), readable when it exits.
    public let pidfd: Int32
    /// How it ended, once reaped; `kill()` may run on another thread than `wait()`.
    private let reaped = Mutex<InspectorExit?>(nil)
    /// The terminal whose foreground the inspector's group took, and the
    /// group to give it back to once the inspector is reaped.
    private let terminal: (fd: Int32, group: pid_t)?

    private static let stageNames: [Int32: String] = [
        Int32(CSHADOW_STAGE_SOCKETPAIR): "socketpair", Int32(CSHADOW_STAGE_PIPE): "pipe2",
        Int32(CSHADOW_STAGE_FORK): "fork", Int32(CSHADOW_STAGE_NO_NEW_PRIVS): "prctl(PR_SET_NO_NEW_PRIVS)",
        Int32(CSHADOW_STAGE_PERSONALITY): "personality(ADDR_NO_RANDOMIZE)",
        Int32(CSHADOW_STAGE_RLIMIT): "raising RLIMIT_NOFILE to cover the guest fd range",
        Int32(CSHADOW_STAGE_SECCOMP): "seccomp(SECCOMP_SET_MODE_FILTER)",
        Int32(CSHADOW_STAGE_SEND_LISTENER): "sending the listener", Int32(CSHADOW_STAGE_EXEC): "exec",
        Int32(CSHADOW_STAGE_RECV_LISTENER): "receiving the listener", Int32(CSHADOW_STAGE_PIDFD): "pidfd_open",
        Int32(CSHADOW_STAGE_STDIO): "redirecting standard streams",
    ]

    private init(pid: Int32, listener: Int32, pidfd: Int32, terminal: (fd: Int32, group: pid_t)? = nil) {
        self.pid = pid
        self.listener = listener
        self.pidfd = pidfd
        self.terminal = terminal
    }

    /// The inspector's stdin when it is a terminal whose foreground swvmm
    /// holds: the inspector's group takes it over, so Ctrl-C and job control
    /// reach the command (nil otherwise: a pipe, a file, or swvmm in the background).
    static func foregroundTerminal(stdin: Int32) -> (fd: Int32, group: pid_t)? {
        let fd = stdin >= 0 ? stdin : STDIN_FILENO
        guard isatty(fd) == 1, tcgetpgrp(fd) == getpgrp() else { return nil }
        return (fd, getpgrp())
    }

    deinit {
        if reaped.withLock({ $0 }) == nil {
            kill()
            _ = try? wait()
        }
        close(listener)
        close(pidfd)
    }

    /// Finds `command` like execvp would: as given if it contains a slash,
    /// else the first executable regular file in PATH.
    public static func resolve(command: String, path: String?) throws -> String {
        if command.contains("/") { return command }
        guard !command.isEmpty else { throw SupervisorError.cannotRun(command: command, stage: "exec", errno: ENOENT) }
        var denied = false
        for directory in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (directory.isEmpty ? "." : String(directory)) + "/" + command
            var info = stat()
            guard stat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            if access(candidate, X_OK) == 0 { return candidate }
            denied = true
        }
        throw SupervisorError.cannotRun(command: command, stage: "exec", errno: denied ? EACCES : ENOENT)
    }

    /// Starts `arguments[0]` (searched in PATH) under `filter`; `stdio[i]`
    /// (if given and ≥ 0) becomes its fd i, else fd i is inherited.
    /// `ptracer` > 0: the process that will supervise it when that is not
    /// this one (it must read the inspector's memory; see cshadow.h).
    public static func spawn(arguments: [String], environment: [String], filter: [BPFInstruction],
                             noRandomize: Bool, minimumOpenFiles: Int,
                             stdio: [Int32] = [-1, -1, -1], ptracer: Int32 = 0) throws -> InspectorProcess {
        let streams = Array((stdio + [-1, -1, -1]).prefix(3))
        guard let command = arguments.first else {
            throw SupervisorError.badConfiguration("no command given")
        }
        let pathVariable = environment.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) }
        let path = try resolve(command: command, path: pathVariable)
        guard filter.count <= Int(UInt16.max) else { throw BPFError.tooLong(filter.count) }
        let program = filter.map(\.cValue)
        let terminal = foregroundTerminal(stdin: streams[0])
        let result: cshadow_spawn_result = withCStrings(arguments) { argv in
            withCStrings(environment) { envp in
                program.withUnsafeBufferPointer { prog in
                    streams.withUnsafeBufferPointer { io in
                        cshadow_spawn_filtered(path, argv, envp, prog.baseAddress, UInt16(prog.count),
                                               noRandomize ? 1 : 0, UInt(max(0, minimumOpenFiles)), io.baseAddress,
                                               terminal?.fd ?? -1, ptracer)
                    }
                }
            }
        }
        guard result.pid > 0, result.listener_fd >= 0, result.pidfd >= 0 else {
            throw SupervisorError.cannotRun(command: command, stage: stageNames[result.stage] ?? "spawn", errno: result.error)
        }
        return InspectorProcess(pid: result.pid, listener: result.listener_fd, pidfd: result.pidfd, terminal: terminal)
    }

    /// Starts the syscall-loop probe: `count` calls of `number` under `filter`.
    public static func spawnSyscallLoop(filter: [BPFInstruction], number: Int, count: Int) throws -> InspectorProcess {
        let program = filter.map(\.cValue)
        let result = program.withUnsafeBufferPointer {
            cshadow_spawn_syscall_loop($0.baseAddress, UInt16($0.count), number, UInt(max(0, count)))
        }
        guard result.pid > 0 else {
            throw SupervisorError.cannotRun(command: "syscall loop", stage: stageNames[result.stage] ?? "spawn", errno: result.error)
        }
        return InspectorProcess(pid: result.pid, listener: result.listener_fd, pidfd: result.pidfd)
    }

    /// Waits for the inspector to end and reaps it (once).
    @discardableResult
    public func wait() throws -> InspectorExit {
        if let done = reaped.withLock({ $0 }) { return done }
        // Wait for the end without reaping: while the inspector is unreaped its
        // group id stays its own, so what it left running in the group
        // (background children, orphans) is killed in one step, race-free.
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 {
            guard errno == EINTR else { throw SupervisorError.systemCall("waitid \(pid)", errno: errno) }
        }
        Glibc.kill(-pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw SupervisorError.systemCall("waitpid \(pid)", errno: errno) }
        }
        if let terminal { _ = cshadow_terminal_take(terminal.fd, terminal.group) }
        // wait(2) status encoding: low 7 bits = terminating signal, 0 for exit.
        let signal = status & 0x7f
        let exit: InspectorExit = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
        reaped.withLock { $0 = exit }
        return exit
    }

    /// Sends SIGKILL to the inspector, its process group and its descendants
    /// (if not yet reaped).
    public func kill() {
        guard reaped.withLock({ $0 }) == nil else { return }
        // Everything it started would otherwise outlive swvmm under a filter
        // nobody answers, holding swvmm's stdout and stderr open. The
        // inspector leads its own process group, and a signal to a group
        // reaches children forked meanwhile too (the kernel makes a racing
        // fork deliver it to the child), so one killpg stops the whole group,
        // orphans included. Descendants that left the group (setsid) are
        // found by their parent links, which stopped processes keep; killing
        // first would reparent them to init, out of reach.
        var tree: [Int32] = [pid]
        Glibc.kill(-pid, SIGSTOP)
        Glibc.kill(pid, SIGSTOP)
        for _ in 0..<ProcessTree.maximumWalks {
            let found = ProcessTree.descendants(of: pid).filter { !tree.contains($0) }
            if found.isEmpty { break }
            for descendant in found { Glibc.kill(descendant, SIGSTOP) }
            tree += found
        }
        for member in tree.reversed() { Glibc.kill(member, SIGKILL) }
        Glibc.kill(-pid, SIGKILL)
    }
}

/// Calls `body` with a NULL-terminated C array of `strings`.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for p in pointers { free(p) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
}
