import ArgumentParser
import Glibc
import Shadow
import VMM

extension ShadowCommand {
    /// `swvmm shadow --vm SOCKET -- CMD`: the VM's swvmm serves the command's
    /// machine calls with its own executor; this process starts the command
    /// (it keeps the terminal, Ctrl-C and the exit status) and relays what
    /// the VM's swvmm says. Exits with the command's status, or 1 when the
    /// VM cannot be reached or ends the run.
    func runOnVM(socketPath: String, arguments: [String]) throws {
        // Before any thread: threads inherit the blocked stop signals.
        let signals = SignalWatcher()
        let client = try reportingErrors { try ShadowControlClient(socketPath: socketPath) }
        // SIGTERM or SIGHUP to swvmm: the command is killed and its end
        // reported as usual (Ctrl-C at the terminal reaches the command itself).
        try reportingErrors { try signals.start { _ in client.cancel() } }
        let request = InspectorRequest(command: arguments[0], guestPaths: guestPaths, localPaths: localPaths,
                                       allowWrites: allowWrites, verbose: verbose, fastPath: !oneCall)
        let result = try reportingErrors {
            try client.run(request: request, arguments: arguments, environment: ShadowCommand.environment())
        }
        if verbose, let report = result.report { printError("swvmm: this run: \(report.counters.summary)") }
        try ShadowCommand.exit(like: result.exit, command: arguments[0])
    }

    /// `swvmm shadow --vm SOCKET --stop-shadow`: the VM's swvmm ends its
    /// shadow process; the next run makes a new one.
    func stopShadowOnVM(socketPath: String) throws {
        let client = try reportingErrors { try ShadowControlClient(socketPath: socketPath) }
        let lines = try reportingErrors { try client.stopShadow() }
        lines.forEach { printError($0) }
    }
}
