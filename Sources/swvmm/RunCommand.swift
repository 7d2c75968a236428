import ArgumentParser
import Glibc
import KVMShadow
import Shadow
import VMM

/// `swvmm run` (the default): boot a Linux kernel with the terminal as its serial console.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Boot a Linux kernel (the default subcommand).",
        discussion: "The terminal becomes the guest's serial console (ttyS0). Press Ctrl-A then x to quit."
    )

    @Option(help: ArgumentHelp("The kernel: a bzImage, or a vmlinux ELF.", valueName: "path"))
    var kernel: String

    @Option(help: ArgumentHelp("An initramfs (cpio, optionally compressed).", valueName: "path"))
    var initrd: String?

    @Option(name: .customLong("cmdline"), help: ArgumentHelp("The kernel command line.", valueName: "string"))
    var commandLine: String = MachineConfiguration.defaultCommandLine

    // .unconditional: "-1" is a (bad) value to report, not a missing one.
    @Option(parsing: .unconditional, help: ArgumentHelp("Guest RAM, e.g. 512M or 2G.", valueName: "size"),
            transform: { try MemorySize(parsing: $0) })
    var memory: MemorySize = MemorySize(bytes: 512 << 20)

    @Option(parsing: .unconditional, help: "Number of virtual CPUs.")
    var cpus: Int = 1

    @Flag(help: "Print every VM exit with the instruction that caused it, and a histogram at the end.")
    var traceExits = false

    @Flag(help: ArgumentHelp(
        "Add one vCPU for shadow context: the guest sees --cpus + 1 CPUs, keeps the last one free (isolcpus, nohz_full, rcu_nocbs, irqaffinity), and swvmm traps the system calls made there at syscall entry.",
        discussion: "The other vCPUs are never stopped for it. On exit swvmm reports the trap's counts."))
    var shadow = false

    @Option(name: .customLong("api-socket"), help: ArgumentHelp(
        "With --shadow: the control socket for swvmm shadow --vm (default: a per-VM socket in $XDG_RUNTIME_DIR/swvmm, or /tmp/swvmm-UID).",
        valueName: "path"))
    var apiSocket: String?

    func validate() throws {
        if apiSocket != nil && !shadow { throw ValidationError("--api-socket needs --shadow (the socket serves swvmm shadow --vm)") }
    }

    @Flag(help: .private)
    var exitAtFirstEntry = false

    func run() throws {
        var configuration = MachineConfiguration(kernelPath: kernel, initrdPath: initrd, commandLine: commandLine,
                                                 memory: memory, cpuCount: shadow ? cpus + 1 : cpus, traceExits: traceExits)
        configuration.dedicatedShadowVCPU = shadow
        let output = ConsoleOutput()
        // Reading the images and checking the configuration happen with the
        // stop signals still deliverable, so Ctrl-C ends a slow or stuck open.
        // Machine's init starts no thread, so blocking them here still comes
        // before any thread that could inherit an unblocked mask.
        let machine = try reportingErrors {
            try Machine(configuration: configuration, console: { output.write(byte: $0) })
        }
        let signals = SignalWatcher()
        if exitAtFirstEntry {
            // `swvmm bench boot`: report the moment the first KVM_RUN is entered, then leave.
            machine.onFirstEntry = { BootTiming.reportFirstEntryAndExit(machine: machine) }
        }
        printError("swvmm: \(configuration.memory) RAM, \(configuration.cpuCount) vCPU(s), command line: \(machine.effectiveCommandLine)")
        // Started after the stop signals are blocked: its thread inherits the mask.
        let shadowVCPU = try reportingErrors { try configuration.shadowVCPUIndex.map { try ShadowVCPU(machine: machine, index: $0) } }
        // Also started after the stop signals are blocked; stopped (the
        // socket removed) on every way out of this function.
        let native = shadowVCPU.map { NativeShadow(machine: machine, shadowVCPU: $0) }
        let controlServer = try reportingErrors { try native.map { try startControlServer(native: $0) } }
        defer { controlServer?.stop() }

        let console = try reportingErrors {
            try TerminalConsole(input: machine.serial, onQuit: { machine.stop(.stoppedByUser("Ctrl-A x on the console")) })
        }
        try reportingErrors { try console.start() }
        try reportingErrors {
            try signals.start { signal in
                console.restore()
                machine.stop(.stoppedByUser("signal \(String(cString: strsignal(signal)))"))
            }
        }
        let outcome = machine.run()
        console.restore()
        if let shadowVCPU { printError("swvmm: \(shadowVCPU.finish())") }
        if let report = native?.report { printError("swvmm: \(report)") }
        console.stop()
        printError("swvmm: \(outcome)")
        throw ExitCode(outcome.exitStatus)
    }

    /// The control socket `swvmm shadow --vm` reaches this VM through; its path goes to stderr.
    private func startControlServer(native: NativeShadow) throws -> ShadowControlServer {
        let path: String
        if let apiSocket {
            path = apiSocket
        } else {
            let runtimeDirectory = getenv("XDG_RUNTIME_DIR").map { String(cString: $0) }
            try ControlSocket.prepareDirectory(ControlSocket.defaultDirectory(runtimeDirectory: runtimeDirectory))
            path = ControlSocket.defaultPath(runtimeDirectory: runtimeDirectory)
        }
        // Memos of the VM's user, in its cache directory (the clients are that user).
        let server = try ShadowControlServer(socketPath: path,
                                             configuration: SupervisorConfiguration(memoStore: MemoStore.fromEnvironment()),
                                             provider: nativeShadowExecutorProvider(native),
                                             stopShadow: nativeShadowStopper(native))
        try server.start()
        printError("swvmm: shadow control socket \(path) (swvmm shadow --vm \(path) -- COMMAND)")
        return server
    }
}
