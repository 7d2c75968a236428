import CKVM
import Glibc
import Guest
import Synchronization

/// A running Linux machine: KVM VM, guest RAM with the kernel loaded, vCPUs
/// and devices; `run()` hands the vCPUs to a `VCPURunner` (a thread each).
///
/// Build it from a validated `MachineConfiguration`, then call `run()`, which
/// returns when the guest stops, fails, or someone calls `stop()`.
public final class Machine: @unchecked Sendable {
    public let configuration: MachineConfiguration
    /// The command line the guest actually receives (the user's, plus platform workarounds).
    public let effectiveCommandLine: String
    public let memory: GuestMemory
    public let statistics = ExitStatistics()
    /// The serial console; output goes wherever `console` writes it.
    public let serial: Serial16550
    let system: KVMSystem
    let virtualMachine: VirtualMachine
    /// The vCPUs' threads and control.
    public let runner: VCPURunner
    let ports = PortIOBus()
    /// Decides, once, that the machine is done.
    public let stopController = StopController()
    /// When each start-up step finished (see `swvmm bench boot`).
    public private(set) var timeline = StartupTimeline()
    /// Called on the vCPU thread just before its first KVM_RUN (benchmarks time it); set before `run()`.
    public var onFirstEntry: (@Sendable () -> Void)? {
        get { runner.onFirstEntry }
        set { runner.onFirstEntry = newValue }
    }

    /// Creates the VM, loads the kernel, and prepares every vCPU and device.
    /// `console` receives the guest's serial output.
    public init(configuration: MachineConfiguration, console: @escaping @Sendable (UInt8) -> Void) throws {
        self.configuration = configuration
        let image = try KernelImage.load(path: configuration.kernelPath)
        let initrd = try configuration.initrdPath.map { try ImageContents.initrd(path: $0) }
        effectiveCommandLine = try configuration.validate(
            kernel: image, hardwareVirtualization: HostPlatform.hasHardwareVirtualization).text
        timeline.mark("read kernel and initrd, check configuration")

        system = try KVMSystem()
        try system.require(Capability.required)
        try configuration.checkCPUCount(maximumVCPUs: system.maximumVCPUs)
        timeline.mark("open /dev/kvm, check capabilities")

        memory = try GuestMemory(size: configuration.memory.bytes)
        virtualMachine = try system.createVirtualMachine()
        try virtualMachine.setIdentityMapAddress(Layout.identityMapAddress)
        try virtualMachine.setTSSAddress(Layout.tssAddress)
        try virtualMachine.createInterruptController()
        try virtualMachine.createTimer()
        timeline.mark("create VM, IRQ chip, PIT")
        try virtualMachine.mapMemory(memory)
        timeline.mark("map guest RAM (KVM_SET_USER_MEMORY_REGION)")

        let boot = BootConfiguration(memoryRegions: memory.regions, cpuCount: configuration.cpuCount,
                                     commandLine: effectiveCommandLine, initrd: initrd)
        let plan = try BootLoader.load(image, configuration: boot, into: memory)
        timeline.mark("load kernel, initrd, boot tables")

        let supportedCPUID = try system.supportedCPUID()
        var vcpus: [VirtualCPU] = []
        for index in 0..<configuration.cpuCount {
            let vcpu = try virtualMachine.createVirtualCPU(id: index)
            try VCPUSetup.configure(vcpu, index: index, plan: plan, supportedCPUID: supportedCPUID,
                                    cpuCount: configuration.cpuCount,
                                    clearCX16: !HostPlatform.hasHardwareVirtualization)
            vcpus.append(vcpu)
        }
        runner = VCPURunner(vcpus: vcpus, memory: memory, ports: ports, stopController: stopController,
                            statistics: statistics, traceExits: configuration.traceExits)
        timeline.mark("create and set up vCPUs")

        let machine = virtualMachine
        serial = Serial16550(output: console, interruptLine: { level in
            try? machine.setInterruptLine(SerialCOM1.irq, level: level)
        })
        try ports.register(serial, name: "serial (COM1)", base: SerialCOM1.base, length: SerialCOM1.length)
        let stopController = stopController
        let keyboardController = I8042(onReset: {
            stopController.stop(.guestStopped("reset through the i8042 keyboard controller"))
        })
        try ports.register(keyboardController, name: "i8042 data", base: I8042Port.data, length: 1)
        try ports.register(keyboardController, name: "i8042 command", base: I8042Port.command, length: 1)
        let powerManagement = ACPIPowerManagement(
            eventBlock: ACPIPowerManagement.defaultEventBlock, controlBlock: ACPIPowerManagement.defaultControlBlock,
            onPowerOff: { stopController.stop(.guestStopped("ACPI power-off (sleep state S5)")) })
        try ports.register(powerManagement, name: "ACPI PM1a event block", base: powerManagement.eventBlock,
                           length: UInt16(ACPIPowerManagement.eventBlockLength))
        try ports.register(powerManagement, name: "ACPI PM1a control block", base: powerManagement.controlBlock,
                           length: UInt16(ACPIPowerManagement.controlBlockLength))
        // Ports Linux touches during boot whose effects swvmm does not model (port 0x61
        // belongs to the in-kernel PIT, which KVM decodes before user space sees it).
        try ports.register(IgnoredPorts(), name: "POST diagnostic", base: DevicePorts.postDiagnostic, length: 1)
    }

    /// Runs every vCPU on its own thread until the machine stops; returns how it ended.
    /// Call once.
    public func run() -> MachineOutcome {
        runner.run()
    }

    /// Ends the run with `reason` (the first reason wins) and kicks every vCPU
    /// out of the guest. Final: a stopped machine does not run again.
    public func stop(_ reason: MachineOutcome) {
        stopController.stop(reason)
    }

    /// One control handle per vCPU, in index order.
    public var vcpuHandles: [VCPUHandle] { runner.handles }

    /// The handle of vCPU `index`, or nil when there is no such vCPU.
    public func vcpuHandle(_ index: Int) -> VCPUHandle? { runner.vcpu(index) }
}
