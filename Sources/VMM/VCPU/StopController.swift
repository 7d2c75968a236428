import Synchronization

/// The machine's single "we are done" decision. Devices (the i8042 reset line,
/// the console escape) and vCPU threads all report here; the first reason
/// wins and every vCPU is kicked out of the guest.
public final class StopController: Sendable {
    private let state = Mutex<(outcome: MachineOutcome?, vcpus: [VCPUHandle])>((nil, []))

    public init() {}

    /// The vCPUs to kick (out of the guest, or awake from a pause) when the machine stops.
    func attach(_ vcpus: [VCPUHandle]) {
        state.withLock { $0.vcpus = vcpus }
    }

    /// Records `reason` if none was recorded yet, then kicks every vCPU.
    public func stop(_ reason: MachineOutcome) {
        let toKick: [VCPUHandle] = state.withLock { current in
            guard current.outcome == nil else { return [] }
            current.outcome = reason
            return current.vcpus
        }
        toKick.forEach { $0.kick() }
    }

    /// The recorded reason, if the machine is stopping.
    public var outcome: MachineOutcome? { state.withLock { $0.outcome } }
}
