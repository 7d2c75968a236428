import Glibc
import Guest

/// Puts the local placeholder of a guest fd into the inspector: the one
/// effect of a redirected call the redirector cannot have by itself (the
/// supervisor does it with SECCOMP_IOCTL_NOTIF_ADDFD on the notification
/// being answered).
public protocol GuestFdInstaller {
    /// True when the inspector already holds local fd `local` (it must survive).
    func isInUse(_ local: Int32) -> Bool
    /// Installs the placeholder at exactly `local`; returns `local`, or -errno.
    func install(at local: Int32, cloexec: Bool) -> Int32
    /// Installs a copy of the supervisor's own fd `file` at exactly `local`
    /// (a guest file's contents below the reserved range); returns `local`, or -errno.
    func install(file: Int32, at local: Int32, cloexec: Bool) -> Int32
}

extension SyscallRedirector {
    /// Gives the inspector guest fd `guestFd`: picks the local number
    /// (exactly `exactly`, or the lowest free one ≥ `atLeast` the inspector
    /// does not hold), installs the placeholder there, records it, and
    /// returns it. On failure the guest fd is closed again, and the inspector
    /// gets EMFILE (EINTR when its call was interrupted meanwhile).
    func install(guestFd: Int32, path: String, netlink: NetlinkProtocol? = nil, cloexec: Bool, exactly: Int32?, atLeast: Int32?,
                 with installer: GuestFdInstaller) -> SyscallReply {
        let local = exactly ?? table.lowestFree(atLeast: atLeast ?? Int32.min) { installer.isInUse($0) }
        guard let local else {
            closeGuest(guestFd)
            diagnostic("swvmm: no free fd in the reserved guest range \(table.range.lowerBound)..<\(table.range.upperBound)")
            return .error(EMFILE)
        }
        let installed = installer.install(at: local, cloexec: cloexec)
        guard installed == local else {
            closeGuest(guestFd)
            if verbose {
                diagnostic("swvmm: installing guest fd placeholder at \(local): \(errnoText(installed < 0 ? -installed : EBADF))")
            }
            return .error(installed == -ENOENT ? EINTR : EMFILE)
        }
        table.insert(local: local, FileDescriptorTable.Entry(guestFd: guestFd, path: path, netlink: netlink))
        return .value(Int64(local))
    }
}
