import CShadow
import Glibc

extension SyscallRedirector {
    /// The most a guest file redirected onto a low fd may hold (its copy is
    /// kept in the supervisor's memory while it is read).
    static let snapshotLimit = 16 << 20
    /// memfd_create flags MFD_CLOEXEC | MFD_ALLOW_SEALING (include/uapi/linux/memfd.h).
    static let memfdFlags: UInt32 = 0x1 | 0x2
    /// F_ADD_SEALS (F_LINUX_SPECIFIC_BASE + 9) and F_SEAL_SEAL | SHRINK | GROW | WRITE
    /// (include/uapi/linux/fcntl.h): the copy can only be read.
    static let fcntlAddSeals: Int32 = 1033
    static let allSeals: Int32 = 0x1 | 0x2 | 0x4 | 0x8

    /// `cmd < /proc/x` (dup2 of a guest fd onto an fd below the reserved
    /// range): the file's contents from its current offset are read from the
    /// guest now, into a sealed memfd that becomes fd `new`. Later reads see
    /// this copy, not the file as it changes; a file that cannot be read whole
    /// (a directory, a pipe that never ends) is refused as before.
    func snapshot(_ spec: SyscallSpec, _ entry: FileDescriptorTable.Entry, onto new: Int32, cloexec: Bool,
                  _ installer: GuestFdInstaller) throws -> SyscallReply {
        let why = "a guest file (\(entry.path)) can become fd \(new) only as a copy of its contents"
        var contents: [UInt8] = []
        let chunk = min(executor.regionSize, 1 << 16)
        while true {
            let n = try guestCall(LinuxABI.Syscall.read, [UInt64(entry.guestFd), executor.regionAddress, UInt64(chunk)], name: spec.name)
            if n < 0 { return refuse(spec, Int32(-n), why + ", and reading it failed", always: true) }
            guard n <= chunk else { throw SupervisorError.guestResultOutOfRange(call: spec.name, result: n, limit: Int64(chunk)) }
            if n == 0 { break }
            contents += try regionBytes(0, Int(n))
            if contents.count > Self.snapshotLimit {
                return refuse(spec, EFBIG, why + ", and it holds more than \(Self.snapshotLimit) bytes", always: true)
            }
        }
        // memfd_create has no Glibc import in Swift: the raw call.
        let created = "swvmm-guest-copy".withCString {
            cshadow_raw_syscall(LinuxABI.Syscall.memfdCreate, UInt64(UInt(bitPattern: $0)), UInt64(Self.memfdFlags), 0, 0, 0, 0)
        }
        guard created >= 0, created <= Int(Int32.max) else {
            return refuse(spec, Int32(clamping: -created), why + ", and memfd_create failed", always: true)
        }
        let copy = Int32(created)
        defer { close(copy) }
        var written = 0
        while written < contents.count {
            let n = contents[written...].withUnsafeBytes { write(copy, $0.baseAddress, $0.count) }
            guard n > 0 else { return refuse(spec, errno, why + ", and writing the copy failed", always: true) }
            written += n
        }
        guard lseek(copy, 0, SEEK_SET) == 0, fcntl(copy, Self.fcntlAddSeals, Self.allSeals) == 0 else {
            return refuse(spec, errno, why + ", and sealing the copy failed", always: true)
        }
        countRedirected(spec)
        let installed = installer.install(file: copy, at: new, cloexec: cloexec)
        guard installed == new else { return .error(installed == -ENOENT ? EINTR : EBADF) }
        if verbose { diagnostic("swvmm: \(spec.name): fd \(new) is a copy of guest \(entry.path) (\(contents.count) bytes, read now)") }
        return .value(Int64(new))
    }
}
