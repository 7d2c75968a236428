import Guest
import CShadow
import Glibc

/// Measures the seccomp user-notification round trip on this host, for the
/// benchmark's denominator (PLATFORM.md: ~50 µs cross-CPU, ~5 µs with
/// synchronous wake-ups).
public enum SupervisorBenchmark {
    /// How each trapped call is answered.
    public enum Answer: Sendable {
        /// SECCOMP_USER_NOTIF_FLAG_CONTINUE (the local-call path).
        case continueLocally
        /// A value (the redirected-call path, minus the guest).
        case value
    }

    /// Result of one measurement.
    public struct RoundTrip: Sendable {
        public var calls: Int
        public var nanosecondsPerCall: Double
        public var synchronousWakeUp: Bool
    }

    /// Runs a child that makes `calls` getppid calls, each trapped and
    /// answered per `answer`; returns the mean wall time per call.
    public static func roundTrip(calls: Int, answer: Answer, synchronousWakeUp: Bool) throws -> RoundTrip {
        let filter = try SeccompFilter.trapping(number: LinuxABI.Syscall.getppid)
        // On one CPU with the child, as the supervisor serves an inspector.
        let sharedCPU = SharedCPU.pinCallingThread()
        defer { sharedCPU?.release() }
        let child = try InspectorProcess.spawnSyscallLoop(filter: filter, number: LinuxABI.Syscall.getppid, count: calls)
        let sync = synchronousWakeUp && cshadow_notif_set_flags(child.listener, CSHADOW_USER_NOTIF_FD_SYNC_WAKE_UP) == 0
        var answered = 0
        let start = monotonicNanoseconds()
        var notification = seccomp_notif()
        var response = seccomp_notif_resp()
        while answered < calls {
            let r = cshadow_notif_recv(child.listener, &notification)
            if r == -EINTR || r == -ENOENT { continue }
            guard r == 0 else { throw SupervisorError.systemCall("SECCOMP_IOCTL_NOTIF_RECV", errno: -r) }
            response = seccomp_notif_resp()
            response.id = notification.id
            switch answer {
            case .continueLocally: response.flags = CSHADOW_USER_NOTIF_FLAG_CONTINUE
            case .value: response.val = 1
            }
            _ = cshadow_notif_send(child.listener, &response)
            answered += 1
        }
        let elapsed = monotonicNanoseconds() - start
        _ = try child.wait()
        return RoundTrip(calls: calls, nanosecondsPerCall: Double(elapsed) / Double(max(calls, 1)), synchronousWakeUp: sync)
    }
}
