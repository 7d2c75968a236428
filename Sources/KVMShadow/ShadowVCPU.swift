import Dispatch
import Guest
import Synchronization
import VMM

/// The vCPU swvmm keeps for shadow context (`swvmm --shadow`): it arms the
/// syscall-entry trap there as soon as the guest kernel has set up its own
/// entry, re-arms it should the kernel rewrite LSTAR, and counts what it
/// sees. The guest's other vCPUs are never touched: their pauses are counted
/// so that this can be checked.
public final class ShadowVCPU: Sendable {
    /// How often the trap looks for the guest kernel's entry while it is not
    /// armed yet, and how often it checks LSTAR still points at it once armed
    /// (one exit of the shadow vCPU each time, counted in its exits per call).
    static let armingInterval: Duration = .milliseconds(200)
    static let checkingInterval: Duration = .seconds(2)

    public let index: Int
    public let trap: SyscallTrap
    private let machine: Machine
    private let stopping = Mutex(false)
    private let wakeUp = DispatchSemaphore(value: 0)
    private let watcher = Mutex<HostThread?>(nil)
    private let lastError = Mutex<String?>(nil)

    /// Starts watching vCPU `index` of `machine` (call before `machine.run()`).
    public init(machine: Machine, index: Int) throws {
        guard let handle = machine.vcpuHandle(index) else { throw ShadowVCPUError.noSuchVCPU(index) }
        self.index = index
        self.machine = machine
        trap = SyscallTrap(handle: handle, memory: machine.memory)
        let thread = try HostThread(name: "shadow-arm") { [self] in watch() }
        watcher.withLock { $0 = thread }
    }

    private func watch() {
        while !stopping.withLock({ $0 }) {
            var armed = false
            do {
                armed = try trap.arm(respectingDisarmFor: SyscallTrap.disarmLimit)
            } catch VCPUControlError.stopped {
                return
            } catch {
                lastError.withLock { $0 = "\(error)" }
            }
            // Waits the interval, or less when `finish()` signals.
            let interval = armed ? Self.checkingInterval : Self.armingInterval
            _ = wakeUp.wait(timeout: .now() + .milliseconds(Int(interval.seconds * 1000)))
        }
    }

    /// Stops watching and says what the trap saw, and how often the other vCPUs were paused.
    public func finish() -> String {
        stopping.withLock { $0 = true }
        wakeUp.signal()
        watcher.withLock { $0?.join(); $0 = nil }
        let counters = trap.counters
        let otherPauses = machine.vcpuHandles.filter { $0.id != index }.map(\.pauseCount).reduce(0, +)
        var report = "shadow vCPU \(index): "
        if let site = trap.site, let entry = trap.realEntry {
            report += "syscall-entry trap at \(site) (kernel entry \(entry.guestHex)), armed \(counters.armings) time(s); "
                + "\(counters.trapped) system calls trapped and let through"
        } else {
            report += "the trap was never armed (the guest kernel did not set up its syscall entry)"
        }
        if let error = lastError.withLock({ $0 }) { report += "; last arming error: \(error)" }
        return report + "; pauses of the other vCPUs: \(otherPauses)"
    }
}

/// Errors setting up the shadow vCPU.
public enum ShadowVCPUError: Error, CustomStringConvertible {
    case noSuchVCPU(Int)
    public var description: String {
        switch self {
        case let .noSuchVCPU(index): return "the machine has no vCPU \(index) for shadow context"
        }
    }
}
