import Guest
import Synchronization

/// Runs a set of vCPUs, one host thread each, and routes their exits: first
/// to each vCPU's exit handler, then to the port and MMIO buses, the rest to
/// the machine's one stop decision. `Machine` owns one; the micro-guest tests
/// build one around a few bytes of code.
///
/// Each vCPU has a `VCPUHandle` (running, paused, stopped), so one vCPU can be
/// paused, resumed or handed its exits while the others run on. Stopping is
/// final: the first reason wins and every thread ends.
public final class VCPURunner: Sendable {
    /// One control handle per vCPU, in index order.
    public let handles: [VCPUHandle]
    /// Port I/O devices.
    public let ports: PortIOBus
    /// MMIO devices (unclaimed reads see all ones, as on an empty bus).
    public let mmio: MMIOBus
    /// Exits by kind, all vCPUs together.
    public let statistics: ExitStatistics
    /// Decides, once, that the run is over.
    public let stopController: StopController
    let memory: GuestMemory
    let exitTracer: ExitTracer?
    private let firstEntryHook = Mutex<(@Sendable () -> Void)?>(nil)
    /// Called on vCPU 0's thread just before its first KVM_RUN (benchmarks time it); set before `run()`.
    public var onFirstEntry: (@Sendable () -> Void)? {
        get { firstEntryHook.withLock { $0 } }
        set { firstEntryHook.withLock { $0 = newValue } }
    }

    /// Wraps `vcpus` (in index order); `memory` is read for failure reports.
    public init(vcpus: [VirtualCPU], memory: GuestMemory, ports: PortIOBus = PortIOBus(), mmio: MMIOBus = MMIOBus(),
                stopController: StopController = StopController(), statistics: ExitStatistics = ExitStatistics(),
                traceExits: Bool = false) {
        handles = vcpus.map(VCPUHandle.init(vcpu:))
        self.ports = ports
        self.mmio = mmio
        self.memory = memory
        self.stopController = stopController
        self.statistics = statistics
        exitTracer = traceExits ? ExitTracer(memory: memory) : nil
        stopController.attach(handles)
    }

    /// Runs every vCPU on its own thread until the run stops; returns how it ended.
    public func run() -> MachineOutcome {
        var threads: [HostThread] = []
        for handle in handles {
            do {
                threads.append(try HostThread(name: "vcpu\(handle.id)") { [self] in runLoop(handle) })
            } catch {
                handle.finish()
                stop(.hostError("\(error)"))
            }
        }
        threads.forEach { $0.join() }
        if let exitTracer { exitTracer.finish(statistics: statistics) }
        return stopController.outcome ?? .hostError("all vCPUs stopped without a reason")
    }

    /// Ends the run with `reason` (the first reason wins) and kicks every vCPU
    /// out of the guest. Final.
    public func stop(_ reason: MachineOutcome) {
        stopController.stop(reason)
    }

    /// Whether the run has been told to stop.
    var isStopping: Bool { stopController.outcome != nil }

    /// The handle of vCPU `index`, or nil when there is no such vCPU.
    public func vcpu(_ index: Int) -> VCPUHandle? {
        handles.indices.contains(index) ? handles[index] : nil
    }

    /// Pauses every running vCPU but those in `kept` (in index order) and
    /// returns those it paused, so the caller resumes exactly them.
    public func pauseAll(except kept: Set<Int> = []) throws -> [VCPUHandle] {
        var paused: [VCPUHandle] = []
        for handle in handles where !kept.contains(handle.id) && handle.state == .running {
            do {
                try handle.send(.pause)
            } catch {
                try? resume(paused)
                throw error
            }
            paused.append(handle)
        }
        return paused
    }

    /// Resumes `handles` (as returned by `pauseAll`).
    public func resume(_ handles: [VCPUHandle]) throws {
        for handle in handles { try handle.send(.resume) }
    }
}
