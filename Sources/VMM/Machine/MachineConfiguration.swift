import Glibc

/// Everything needed to build a machine, checked before any KVM object exists
/// (after Virtualization.framework's configuration-then-machine split).
public struct MachineConfiguration: Sendable {
    /// Path to a bzImage or vmlinux ELF.
    public var kernelPath: String
    /// Optional initramfs.
    public var initrdPath: String?
    /// The kernel command line, exactly as the guest will see it.
    public var commandLine: String
    /// Guest RAM.
    public var memory: MemorySize
    /// Number of vCPUs.
    public var cpuCount: Int
    /// Print every exit with its decoded instruction, and a histogram at the end.
    public var traceExits: Bool
    /// Whether the last of the `cpuCount` vCPUs is kept for shadow context:
    /// the guest is told to leave it alone (`isolationParameters`).
    public var dedicatedShadowVCPU: Bool = false

    /// The index of the vCPU kept for shadow context, if there is one.
    public var shadowVCPUIndex: Int? { dedicatedShadowVCPU ? cpuCount - 1 : nil }

    /// The kernel parameters that keep everything but the shadow vCPU's own
    /// work off CPU `index` (all in Debian's kernels: CPU_ISOLATION, NO_HZ_FULL,
    /// RCU_NOCB_CPU): no scheduler load balancing or unbound work there, no
    /// timer tick while one task runs, RCU callbacks elsewhere, device
    /// interrupts on the other CPUs.
    public static func isolationParameters(shadowVCPU index: Int) -> String {
        let others = index == 1 ? "0" : "0-\(index - 1)"
        return "isolcpus=\(index) nohz_full=\(index) rcu_nocbs=\(index) irqaffinity=\(others)"
    }

    /// The command line used when the user gives none: serial console on the
    /// UART swvmm emulates, reboot through the i8042 (which swvmm turns into a
    /// clean exit), and no wait for a PS/2 keyboard that is not there.
    public static let defaultCommandLine = "console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nomux i8042.dumbkbd"

    /// The smallest RAM swvmm accepts: below this, no Linux kernel decompresses.
    public static let minimumMemory = MemorySize(bytes: 16 << 20)

    public init(kernelPath: String, initrdPath: String? = nil, commandLine: String = MachineConfiguration.defaultCommandLine,
                memory: MemorySize = MemorySize(bytes: 512 << 20), cpuCount: Int = 1, traceExits: Bool = false) {
        self.kernelPath = kernelPath
        self.initrdPath = initrdPath
        self.commandLine = commandLine
        self.memory = memory
        self.cpuCount = cpuCount
        self.traceExits = traceExits
    }

    /// Checks everything that can be checked before any KVM object exists:
    /// RAM, the CPU count against the MP table, and the command line the guest
    /// would get (`effectiveCommandLine`) against `kernel`'s limit. Returns
    /// that command line.
    public func validate(kernel: KernelImage, hardwareVirtualization: Bool,
                         hostMemory: UInt64 = MachineConfiguration.hostPhysicalMemory()) throws -> KernelCommandLine {
        guard memory.bytes >= MachineConfiguration.minimumMemory.bytes else {
            throw ConfigurationError.memoryTooSmall(memory, minimum: MachineConfiguration.minimumMemory)
        }
        guard memory.bytes % (1 << 20) == 0 else { throw ConfigurationError.memoryNotMiBAligned(memory) }
        if hostMemory > 0, memory.bytes > hostMemory {
            throw ConfigurationError.memoryExceedsHost(memory, host: MemorySize(bytes: hostMemory))
        }
        try checkCPUCount(maximumVCPUs: MachineConfiguration.maximumCPUsInMPTable)
        if dedicatedShadowVCPU, cpuCount < 2 { throw ConfigurationError.shadowVCPUAlone }
        let text = effectiveCommandLine(hardwareVirtualization: hardwareVirtualization)
        do {
            return try KernelCommandLine(text, kernelLimit: kernel.commandLineLimit)
        } catch let BootError.commandLineTooLong(length, limit) {
            let appended = text == commandLine ? nil : String(text.dropFirst(commandLine.count))
            throw ConfigurationError.commandLineTooLong(length: length, limit: limit, appended: appended)
        }
    }

    /// Checks the CPU count against KVM's limit (`maximumVCPUs`, from the
    /// host's KVM) and the boot tables' (the MP table entries that fit in the
    /// EBDA; the MADT holds as many).
    public func checkCPUCount(maximumVCPUs: Int) throws {
        let maximumCPUs = min(maximumVCPUs, MachineConfiguration.maximumCPUsInMPTable)
        guard (1...maximumCPUs).contains(cpuCount) else {
            throw ConfigurationError.invalidCPUCount(cpuCount, maximum: maximumCPUs)
        }
    }

    /// The kernel command line swvmm passes: the user's, then the shadow
    /// vCPU's isolation (`isolationParameters`), then platform workarounds:
    /// on a host without VT-x/AMD-V, `noxsave`, because that KVM's emulator
    /// lacks `xrstor` (shared/PLATFORM.md, "Emulator gaps").
    public func effectiveCommandLine(hardwareVirtualization: Bool) -> String {
        var words = commandLine.split(separator: " ").map(String.init)
        if let index = shadowVCPUIndex {
            words += MachineConfiguration.isolationParameters(shadowVCPU: index).split(separator: " ").map(String.init)
        }
        if !hardwareVirtualization, !words.contains("noxsave") { words.append("noxsave") }
        let appended = words.dropFirst(commandLine.split(separator: " ").count).joined(separator: " ")
        guard !appended.isEmpty else { return commandLine }
        return commandLine.isEmpty ? appended : commandLine + " " + appended
    }

    /// The CPUs the MP table can describe: as many entries as fit in the EBDA,
    /// and 8-bit xAPIC ids with one left for the IOAPIC (MP spec 1.4 §4.3.1).
    public static var maximumCPUsInMPTable: Int { MPTable.maxCPUCount }

    /// Physical RAM of this host (sysconf), or 0 if unknown.
    public static func hostPhysicalMemory() -> UInt64 {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return 0 }
        return UInt64(pages) * UInt64(pageSize)
    }
}

/// A configuration that cannot work, found before anything was created.
public enum ConfigurationError: Error, Equatable, CustomStringConvertible {
    case memoryTooSmall(MemorySize, minimum: MemorySize)
    case memoryNotMiBAligned(MemorySize)
    case memoryExceedsHost(MemorySize, host: MemorySize)
    case invalidCPUCount(Int, maximum: Int)
    /// A shadow vCPU needs at least one other vCPU for the guest.
    case shadowVCPUAlone
    /// The command line the guest would get (with what swvmm `appended`, if
    /// anything) is longer than the kernel or swvmm's boot area accepts.
    case commandLineTooLong(length: Int, limit: Int, appended: String?)

    public var description: String {
        switch self {
        case let .memoryTooSmall(size, minimum):
            return "--memory \(size) is too small: a Linux guest needs at least \(minimum)"
        case let .memoryNotMiBAligned(size):
            return "--memory \(size) must be a whole number of MiB"
        case let .memoryExceedsHost(size, host):
            return "--memory \(size) is more than this host's \(host) of RAM"
        case .shadowVCPUAlone:
            return "--shadow adds a vCPU for the shadow process; the guest needs at least one other (--cpus 1 or more)"
        case let .invalidCPUCount(count, maximum):
            return "--cpus \(count) is out of range: swvmm on this host allows 1 to \(maximum)"
        case let .commandLineTooLong(length, limit, appended):
            let note = appended.map { ", counting the \"\($0.drop { $0 == " " })\" swvmm appends on this host" } ?? ""
            return "command line is \(length) bytes\(note); the kernel accepts at most \(limit)"
        }
    }
}
