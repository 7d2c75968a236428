import ArgumentParser
import Glibc
import Guest
import VMM

/// `swvmm bench init`: swvmm against QEMU's microvm machine, booting the same
/// kernel, initramfs and command line to the same `/init` marker, side by
/// side in one run: time and VM exits. Needs hardware virtualization (run it
/// inside the KVM host on machines without VT-x/AMD-V: `make bench-init`).
struct InitBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Boot to /init: swvmm vs QEMU microvm (same kernel and initramfs), time and VM exits.",
        discussion: """
        Each VMM boots the guest `--runs` times, alternately; a run ends when the guest's /init prints \
        SWVMM-INIT-OK (the guest then resets or powers off). VM exits come from the host KVM's own \
        counters (debugfs kvm/<pid>-<fd>/exits, all exits, those KVM handled itself included), read \
        at the marker, so both VMMs are counted the same way. Inside the emulated-SVM KVM host every \
        instruction is emulated: read the ratios and exit counts, not the absolute times.
        """
    )

    @Option(help: "Kernel (bzImage) both VMMs boot.")
    var kernel = "images/out/bzImage-tiny"
    @Option(help: "Initramfs both VMMs load.")
    var initrd = "images/out/initramfs.cpio.gz"
    @Option(help: "vCPUs.")
    var cpus = 1
    @Option(help: "Guest RAM (both VMMs).")
    var memory = "512M"
    @Option(help: "Boots of each VMM (medians are reported).")
    var runs = 5
    @Option(help: "Seconds one boot may take to reach /init.")
    var timeout = 180
    @Option(help: "The QEMU to compare with.")
    var qemu = "/usr/bin/qemu-system-x86_64"

    static let marker = "SWVMM-INIT-OK"
    static let commandLine = MachineConfiguration.defaultCommandLine + " swvmm.mode=reboot"

    func run() throws {
        guard HostPlatform.hasHardwareVirtualization else {
            printError("swvmm: bench init needs hardware virtualization (vmx/svm in /proc/cpuinfo); "
                       + "on this machine run it inside the KVM host: make bench-init")
            throw ExitCode(ExitStatus.failure)
        }
        let swvmm = try reportingErrors { try Executable.current() }
        guard access(qemu, X_OK) == 0 else {
            printError("swvmm: \(qemu) not found (apt-get install qemu-system-x86), or pass --qemu")
            throw ExitCode(ExitStatus.failure)
        }
        let counters = KVMExitCounters.available()
        let contenders: [(name: String, path: String, arguments: [String])] = [
            ("swvmm", swvmm, ["run", "--kernel", kernel, "--initrd", initrd, "--cpus", "\(cpus)", "--memory", memory,
                              "--cmdline", Self.commandLine]),
            ("QEMU microvm", qemu, ["-M", "microvm", "-accel", "kvm", "-cpu", "host", "-smp", "\(cpus)", "-m", memory,
                                    "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
                                    "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
                                    "-append", Self.commandLine]),
        ]
        var seconds = Array(repeating: [Double](), count: contenders.count)
        var exits = Array(repeating: [Double](), count: contenders.count)
        var userExits = Array(repeating: [Double](), count: contenders.count)
        for run in 1...max(1, runs) {
            for (index, contender) in contenders.enumerated() {
                printError("swvmm bench init: run \(run)/\(max(1, runs)): \(contender.name)")
                let boot = try boot(contender.path, contender.arguments, name: contender.name, counters: counters)
                seconds[index].append(boot.seconds)
                if let all = boot.exits { exits[index].append(Double(all.total)); userExits[index].append(Double(all.userSpace)) }
            }
        }
        print("swvmm bench init: \(kernel) + \(initrd), \(cpus) vCPU(s), \(memory), \(max(1, runs)) boots each, medians")
        print("  command line: \(Self.commandLine)")
        for (index, contender) in contenders.enumerated() {
            let exitText = exits[index].isEmpty ? "n/a" : formatted(median(exits[index]), digits: 0)
            let userText = userExits[index].isEmpty ? "n/a" : formatted(median(userExits[index]), digits: 0)
            let label = contender.name + String(repeating: " ", count: max(0, 14 - contender.name.count))
            print("  \(label) start -> /init \(formatted(median(seconds[index]))) s   "
                  + "VM exits \(exitText) (to user space: \(userText))")
        }
        print("  ratio swvmm / QEMU microvm: time \(formatted(median(seconds[0]) / median(seconds[1])))x (goal <= 1)"
              + (exits[0].isEmpty || exits[1].isEmpty ? "" : ", VM exits \(formatted(median(exits[0]) / median(exits[1])))x (goal < 1)"))
        if counters == nil { print("  VM exits: n/a (no /sys/kernel/debug/kvm here: mount debugfs as root)") }
        print("  (inside the emulated-SVM KVM host absolute times are emulated: compare the ratios and exit counts,"
              + " which carry over to hardware)")
    }

    /// One boot to the marker; the VMM is then ended (it usually has ended itself by the guest's reset).
    private func boot(_ path: String, _ arguments: [String], name: String, counters: KVMExitCounters?) throws
        -> (seconds: Double, exits: KVMExitCounters.Snapshot?) {
        let start = monotonicNanoseconds()
        let child = try reportingErrors { try ChildProcess.spawn(path, arguments) }
        let reached = child.read(until: Self.marker, deadline: start + UInt64(timeout) * 1_000_000_000)
        let snapshot = reached.time.flatMap { _ in counters?.snapshot(pid: child.pid) }
        child.signal(SIGTERM)
        _ = child.finish()
        guard let time = reached.time else {
            let tail = String(decoding: reached.output.suffix(2000), as: UTF8.self)
            printError("swvmm: \(name) did not reach /init within \(timeout) s; its last output:\n\(tail)")
            throw ExitCode(ExitStatus.failure)
        }
        return (Double(time - start) / 1e9, snapshot)
    }
}

/// The host KVM's per-VM exit counters in debugfs (`kvm/<pid>-<vm fd>/`):
/// every VM exit, whether KVM handled it or passed it to the VMM.
struct KVMExitCounters {
    static let root = "/sys/kernel/debug/kvm"

    struct Snapshot {
        /// All exits.
        let total: UInt64
        /// Exits the VMM handled: port I/O and MMIO.
        let userSpace: UInt64
    }

    /// The counters, mounting debugfs when it is not (as root); nil when there are none.
    static func available() -> KVMExitCounters? {
        if access(root, R_OK) != 0 { _ = mount("debugfs", "/sys/kernel/debug", "debugfs", 0, nil) }
        return access(root, R_OK) == 0 ? KVMExitCounters() : nil
    }

    /// The counters of the VM that process `pid` created (its first, if several).
    func snapshot(pid: pid_t) -> Snapshot? {
        guard let directory = opendir(Self.root) else { return nil }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasPrefix("\(pid)-") else { continue }
            let path = Self.root + "/" + name
            guard let total = Self.counter(path + "/exits") else { return nil }
            let io = Self.counter(path + "/io_exits") ?? 0, mmio = Self.counter(path + "/mmio_exits") ?? 0
            return Snapshot(total: total, userSpace: io + mmio)
        }
        return nil
    }

    private static func counter(_ path: String) -> UInt64? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return UInt64(String(decoding: buffer[0..<count].prefix { $0 >= 0x30 && $0 <= 0x39 }, as: UTF8.self))
    }
}
