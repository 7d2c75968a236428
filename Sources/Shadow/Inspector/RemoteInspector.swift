import CShadow
import Glibc

/// What the supervisor needs of an inspector it serves: who it is, its
/// seccomp listener, a pidfd readable once it exits, and a way to end it.
public protocol SupervisedInspector: AnyObject, Sendable {
    /// The inspector's pid (the leader of its own process group).
    var pid: Int32 { get }
    /// The seccomp notification listener of its filter.
    var listener: Int32 { get }
    /// A pidfd for it.
    var pidfd: Int32 { get }
    /// Kills it and what it started; safe from any thread, and after it ended.
    func kill()
}

/// An inspector another process started under the filter and handed over
/// (a `swvmm shadow --vm` client, through the control socket): this process
/// serves its notifications but is not its parent, so it cannot reap it;
/// the starter waits for it and reports its exit status.
public final class RemoteInspector: SupervisedInspector {
    public let pid: Int32
    public let listener: Int32
    public let pidfd: Int32

    /// Takes ownership of `listener` and `pidfd` (closed on deinit).
    public init(pid: Int32, listener: Int32, pidfd: Int32) {
        self.pid = pid
        self.listener = listener
        self.pidfd = pidfd
    }

    deinit {
        close(listener)
        close(pidfd)
    }

    /// SIGKILL to the inspector through its pidfd (never a recycled pid),
    /// then to its process group while the pidfd says the leader is still
    /// there (unreaped, so its pid, and with it the group id, is not reused).
    /// Its starter kills the group again when it reaps it.
    public func kill() {
        guard cshadow_pidfd_send_signal(pidfd, SIGKILL) == 0 else { return }
        Glibc.kill(-pid, SIGKILL)
    }
}
