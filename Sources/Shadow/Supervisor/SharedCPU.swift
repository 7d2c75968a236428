import CShadow

/// Keeps an inspector and the thread serving it on one CPU while it runs.
///
/// A redirected call is two hand-offs between them (the notification, the
/// answer). Synchronous wake-ups make each hand-off a switch on the waker's
/// CPU, but the scheduler still moves either side to an idle CPU between
/// calls, and the supervisor then works with cold caches: on a 2-CPU host
/// its own time per call for `ps -e` was 6 µs unpinned and 2.3 µs on one
/// CPU. `SupervisorBenchmark` measures the seccomp round trip, its yardstick,
/// on one CPU the same way.
struct SharedCPU {
    /// CPU masks as sched_setaffinity(2) takes them (`LinuxABI.cpuSet`).
    private let former: [UInt8]
    private let only: [UInt8]

    /// Pins the calling thread to the CPU it is on now; nil where the kernel
    /// refuses or cannot say (the run then goes unpinned).
    static func pinCallingThread() -> SharedCPU? {
        var former = [UInt8](repeating: 0, count: LinuxABI.cpuSetBytes)
        guard let only = LinuxABI.cpuSet(only: Int(cshadow_current_cpu())),
              cshadow_get_affinity(0, &former, former.count) == 0 else { return nil }
        let shared = SharedCPU(former: former, only: only)
        return shared.pin(task: 0) ? shared : nil
    }

    /// Puts task `task` (0: the calling thread) on the shared CPU; false if refused.
    @discardableResult
    func pin(task: Int32) -> Bool {
        cshadow_set_affinity(task, only, only.count) == 0
    }

    /// Gives the calling thread its former CPUs back.
    func release() {
        _ = cshadow_set_affinity(0, former, former.count)
    }
}
