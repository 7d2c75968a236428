import ArgumentParser
import GDBRemote
import Glibc
import Shadow
import Synchronization
import VMM

/// `swvmm shadow`: run an unmodified host program whose machine-state system
/// calls execute in a guest's kernel (shadow context, DSN 2014).
struct ShadowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shadow",
        abstract: "Run a host command so that what it asks about the machine is answered by a guest's kernel.",
        discussion: """
        Examples: swvmm shadow --gdb unix:/tmp/guest/gdb.sock -- ps aux
                  swvmm shadow --vm $XDG_RUNTIME_DIR/swvmm/vm-PID.sock -- ps aux

        The command's system calls about the machine (opening /proc, /sys, /etc/passwd, reading them, uname, sysinfo, statfs) run inside the guest through a shadow process that swvmm plants there without an agent or kernel symbols. Everything else (the command's libraries, memory, terminal) stays local. The guest is read-only unless --allow-writes.

        Calls that act on the machine or on other processes (kill, sethostname, settimeofday, umount, syslog clearing, ...) never run on this host: reads go to the guest, changes go to the guest with --allow-writes and fail with EPERM otherwise; calls swvmm does not know fail with ENOSYS. Only calls about the command's own processes run locally.

        With --gdb, the shadow process stays in the guest between runs (found again through /tmp/swvmm-UID, by the gdbstub's identity) and ends itself after --shadow-idle-timeout seconds without a run; --stop-shadow ends it now. With --vm, the swvmm that runs the VM (swvmm --kernel ... --shadow, which prints its socket's path) keeps the shadow process and serves the command; one command at a time per VM.

        The command and the swvmm thread that answers its calls share one CPU for the run (the one that thread was on), so each hand-off between them stays on a warm CPU; the command's threads and children share it too.

        The exit status is the command's; 1 when swvmm cannot start it or reach the guest.
        """
    )

    @Option(name: .customLong("gdb"), help: ArgumentHelp("The guest's gdbstub: unix:PATH or tcp:HOST:PORT (e.g. QEMU's -gdb).", valueName: "address"))
    var gdbAddress: String?

    @Option(name: .customLong("vm"), help: ArgumentHelp("The control socket of a swvmm VM started with --shadow.", valueName: "socket"))
    var vmSocket: String?

    @Option(name: .customLong("guest-path"), help: ArgumentHelp("Also take this path from the guest (repeatable).", valueName: "path"))
    var guestPaths: [String] = []

    @Option(name: .customLong("local-path"), help: ArgumentHelp("Keep this path local (repeatable).", valueName: "path"))
    var localPaths: [String] = []

    @Flag(help: "Let the command write or create guest files and change the guest (signals to its processes, its host name, clock, ...).")
    var allowWrites = false

    @Flag(help: "Say how the shadow process was found or built, and each refused call.")
    var verbose = false

    @Flag(name: .customLong("one-call"),
          help: "Run every guest call on its own: no read-ahead of /proc files, no memo of what the command looks up (memos live in $XDG_CACHE_HOME/swvmm).")
    var oneCall = false

    @Option(name: .customLong("shadow-idle-timeout"),
            help: ArgumentHelp("With --gdb: the shadow process ends itself after this many seconds without a run (0: never; default \(Int(ShadowConfiguration.defaultIdleTimeout.components.seconds))).",
                               valueName: "seconds"))
    var shadowIdleTimeout: Int?

    @Flag(name: .customLong("stop-shadow"), help: "End the guest's shadow process for this gdbstub or VM (no command is run); the next run makes a new one.")
    var stopShadow = false

    /// The state-file key: the gdbstub's identity, not its spelling.
    static func stateKey(_ address: String) -> String {
        switch try? GDBRemoteAddress(parsing: address) {
        case let .unix(path)?: return ShadowStateFile.key(unixSocket: path)
        case let .tcp(host, port)?: return ShadowStateFile.key(tcpHost: host, port: port)
        case nil: return address
        }
    }

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The command and its arguments, after --.", valueName: "command"))
    var command: [String] = []

    func validate() throws {
        // The passthrough argument takes a --help given without --gdb or --vm.
        if let first = command.first, ["--help", "-h"].contains(first) { throw CleanExit.helpRequest(self) }
        guard (gdbAddress == nil) != (vmSocket == nil) else {
            throw ValidationError("give exactly one of --gdb ADDRESS (a QEMU gdbstub) and --vm SOCKET (a swvmm VM run with --shadow)")
        }
        if vmSocket != nil && shadowIdleTimeout != nil {
            throw ValidationError("--shadow-idle-timeout applies to --gdb only: with --vm, the VM's swvmm keeps the shadow process")
        }
        guard (shadowIdleTimeout ?? 0) >= 0 else { throw ValidationError("--shadow-idle-timeout must be 0 or more seconds") }
        // A relative path would be taken from /, not from the current directory: refuse it.
        for (option, paths) in [("--guest-path", guestPaths), ("--local-path", localPaths)] {
            if let relative = paths.first(where: { !$0.hasPrefix("/") }) {
                throw ValidationError("\(option) \(relative): give an absolute path (paths are the guest's or this host's, from /)")
            }
        }
    }

    func run() throws {
        let arguments = command.first == "--" ? Array(command.dropFirst()) : command
        if stopShadow {
            guard arguments.isEmpty else { throw ValidationError("--stop-shadow runs no command") }
            guard let gdbAddress else { return try stopShadowOnVM(socketPath: vmSocket ?? "") }
            return try endShadow(gdbAddress)
        }
        guard !arguments.isEmpty else {
            throw ValidationError("give the command to run after --, e.g. swvmm shadow --gdb unix:PATH -- ps aux")
        }
        guard let gdbAddress else { return try runOnVM(socketPath: vmSocket ?? "", arguments: arguments) }
        let shadowIdleTimeout = self.shadowIdleTimeout ?? Int(ShadowConfiguration.defaultIdleTimeout.components.seconds)
        // A stop signal ends the connection and S's bootstrap at once (every
        // wait on the stub is cancelled), and later the inspector.
        let cancellation = try reportingErrors { try Cancellation() }
        let running = RunningSupervisor()
        let signals = SignalWatcher()
        try reportingErrors {
            try signals.start { _ in
                if !running.terminateInspector() { cancellation.cancel() }
            }
        }
        let target = try reportingErrors {
            try GDBRemoteTarget(address: gdbAddress, timeout: 10, cancellation: cancellation)
        }
        let session = try reportingErrors {
            do {
                var configuration = ShadowConfiguration()
                configuration.idleTimeout = shadowIdleTimeout == 0 ? nil : .seconds(shadowIdleTimeout)
                return try ShadowSession(target: target, key: ShadowCommand.stateKey(gdbAddress), configuration: configuration)
            } catch {
                try? target.detach()
                throw error
            }
        }
        if verbose { printError("swvmm: \(ShadowCommand.describe(session))") }
        let policy = ShadowPolicy(extraGuestPaths: guestPaths, extraLocalPaths: localPaths, allowWrites: allowWrites)
        let supervisor = Supervisor(executor: session.executor,
                                    configuration: SupervisorConfiguration(policy: policy, verbose: verbose, fastPath: !oneCall,
                                                                           memoStore: oneCall ? nil : MemoStore.fromEnvironment()))
        let exit: InspectorExit
        let measuredBefore = session.executor.measurements
        do {
            // A signal that came during the bootstrap, too late to cancel it, still stops the run.
            guard running.install(supervisor), !cancellation.isCancelled else {
                throw GDBRemoteError.cancelled(while: "S's bootstrap")
            }
            exit = try supervisor.run(arguments: arguments, environment: ShadowCommand.environment())
        } catch {
            ShadowCommand.leave(session, target)
            printError("swvmm: \(error)")
            throw ExitCode(ExitStatus.failure)
        }
        ShadowCommand.leave(session, target)
        if verbose {
            if let cost = describeMeasurements(before: measuredBefore, after: session.executor.measurements) {
                printError("swvmm: this run in the guest: \(cost)")
            }
            printError("swvmm: this run: \(supervisor.counters.summary)")
        }
        try ShadowCommand.exit(like: exit, command: arguments[0])
    }

    /// Ends swvmm with the command's status; like a shell, says when the
    /// command died from a signal (not from a closed pipe, as in `... | head`),
    /// since its status alone is easy to miss.
    static func exit(like exit: InspectorExit, command: String) throws -> Never {
        if case let .signaled(signal) = exit, signal != SIGPIPE {
            printError("swvmm: \(command) was killed by signal \(signal) (\(String(cString: strsignal(signal))))")
        }
        throw ExitCode(exit.shellStatus)
    }

    /// `--stop-shadow`: ends the S saved for this gdbstub, if it is still there.
    func endShadow(_ gdbAddress: String) throws {
        let target = try reportingErrors { try GDBRemoteTarget(address: gdbAddress, timeout: 10) }
        let ended = try reportingErrors {
            defer { try? target.detach() }
            return try ShadowSession.endShadow(target: target, key: ShadowCommand.stateKey(gdbAddress))
        }
        printError(ended.map { "swvmm: shadow process pid \($0) told to exit" } ?? "swvmm: no shadow process saved for \(gdbAddress)")
    }

    /// Lets S go back to waiting in the guest and resumes the guest.
    static func leave(_ session: ShadowSession, _ target: GDBRemoteTarget) {
        try? session.executor.close()
        try? target.detach()
    }

    static func describe(_ session: ShadowSession) -> String {
        let shadow = session.executor.shadow
        let ready = "ready after \(session.readyAfter)"
        switch session.origin {
        case .reused:
            return "reusing shadow process pid \(shadow.pid) from the state file, \(ready)"
        case let .built(_, staleReason):
            let why = staleReason.map { " (the saved one was stale: \($0))" } ?? ""
            return "built shadow process pid \(shadow.pid)\(why), \(ready)"
        }
    }

    /// This process's environment, as "NAME=value" strings.
    static func environment() -> [String] {
        var result: [String] = []
        var entry = environ
        while let pointer = entry.pointee {
            result.append(String(cString: pointer))
            entry += 1
        }
        return result
    }
}

/// The supervisor a stop signal should reach, once the inspector is about to run.
private final class RunningSupervisor: Sendable {
    private let slot = Mutex<(supervisor: Supervisor?, signalled: Bool)>((nil, false))

    /// Kills the inspector if a supervisor is installed; false (and
    /// remembered) otherwise, so `install` can refuse to start one.
    func terminateInspector() -> Bool {
        slot.withLock { state in
            state.signalled = true
            state.supervisor?.terminateInspector()
            return state.supervisor != nil
        }
    }

    /// Installs `supervisor`; false when a stop signal came first.
    func install(_ supervisor: Supervisor) -> Bool {
        slot.withLock { state in
            state.supervisor = supervisor
            return !state.signalled
        }
    }
}
