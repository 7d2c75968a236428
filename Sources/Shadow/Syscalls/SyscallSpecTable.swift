/// The marshalling of the calls of class `.routed` and `.machine` in
/// `SyscallClassTable`, by number.
public enum SyscallSpecTable {
    typealias N = LinuxABI.Syscall

    /// All specs, in filter order.
    public static let all: [SyscallSpec] = supported + special + unsupported + machine

    /// Specs by syscall number.
    public static let byNumber: [Int: SyscallSpec] = {
        var table: [Int: SyscallSpec] = [:]
        for spec in all { table[spec.number] = spec }
        return table
    }()

    /// The spec of call `number`, if known: an array index, not a hash
    /// lookup, since the supervisor asks for every call it is sent.
    public static func spec(number: Int) -> SyscallSpec? {
        number >= 0 && number < byIndex.count ? byIndex[number] : nil
    }

    private static let byIndex: [SyscallSpec?] = {
        var table = [SyscallSpec?](repeating: nil, count: (all.map(\.number).max() ?? -1) + 1)
        for spec in all where spec.number >= 0 { table[spec.number] = spec }
        return table
    }()

    /// Address family of netlink sockets (include/linux/socket.h, AF_NETLINK).
    public static let addressFamilyNetlink: UInt32 = 16

    static let supported: [SyscallSpec] = [
        SyscallSpec(N.read, "read", [.fd, .outBuffer(length: 2), .value]),
        SyscallSpec(N.write, "write", [.fd, .inBuffer(length: 2), .value]),
        SyscallSpec(N.pread64, "pread64", [.fd, .outBuffer(length: 2), .value, .value]),
        SyscallSpec(N.pwrite64, "pwrite64", [.fd, .inBuffer(length: 2), .value, .value]),
        SyscallSpec(N.readv, "readv", [.fd, .iovecOut(count: 2), .value]),
        SyscallSpec(N.lseek, "lseek", [.fd, .value, .value]),
        SyscallSpec(N.getdents, "getdents", [.fd, .outBuffer(length: 2), .value]),
        SyscallSpec(N.getdents64, "getdents64", [.fd, .outBuffer(length: 2), .value]),
        SyscallSpec(N.fstat, "fstat", [.fd, .outStruct(size: KernelStructSize.stat)]),
        SyscallSpec(N.stat, "stat", [.path, .outStruct(size: KernelStructSize.stat)]),
        SyscallSpec(N.lstat, "lstat", [.path, .outStruct(size: KernelStructSize.stat)]),
        SyscallSpec(N.newfstatat, "newfstatat", [.dirfd, .path, .outStruct(size: KernelStructSize.stat), .value]),
        SyscallSpec(N.statx, "statx", [.dirfd, .path, .value, .value, .outStruct(size: KernelStructSize.statx)]),
        SyscallSpec(N.readlink, "readlink", [.path, .outBuffer(length: 2), .value]),
        SyscallSpec(N.readlinkat, "readlinkat", [.dirfd, .path, .outBuffer(length: 3), .value]),
        SyscallSpec(N.access, "access", [.path, .value]),
        SyscallSpec(N.faccessat, "faccessat", [.dirfd, .path, .value]),
        SyscallSpec(N.faccessat2, "faccessat2", [.dirfd, .path, .value, .value]),
        SyscallSpec(N.uname, "uname", [.outStruct(size: KernelStructSize.utsname)]),
        SyscallSpec(N.sysinfo, "sysinfo", [.outStruct(size: KernelStructSize.sysinfo)]),
        SyscallSpec(N.statfs, "statfs", [.path, .outStruct(size: KernelStructSize.statfs)], forceGuest: true),
        SyscallSpec(N.fstatfs, "fstatfs", [.fd, .outStruct(size: KernelStructSize.statfs)]),
        // ls -l asks for ACLs and security labels on every file.
        SyscallSpec(N.getxattr, "getxattr", [.path, .string, .outBufferOrSizeQuery(length: 3), .value]),
        SyscallSpec(N.lgetxattr, "lgetxattr", [.path, .string, .outBufferOrSizeQuery(length: 3), .value]),
        SyscallSpec(N.listxattr, "listxattr", [.path, .outBufferOrSizeQuery(length: 2), .value]),
        SyscallSpec(N.llistxattr, "llistxattr", [.path, .outBufferOrSizeQuery(length: 2), .value]),
        SyscallSpec(N.fgetxattr, "fgetxattr", [.fd, .string, .outBufferOrSizeQuery(length: 3), .value]),
        SyscallSpec(N.flistxattr, "flistxattr", [.fd, .outBufferOrSizeQuery(length: 2), .value]),
    ]

    static let special: [SyscallSpec] = [
        SyscallSpec(N.open, "open", [.path, .value, .value], handling: .special),
        SyscallSpec(N.openat, "openat", [.dirfd, .path, .value, .value], handling: .special),
        SyscallSpec(N.creat, "creat", [.path, .value], handling: .special),
        SyscallSpec(N.close, "close", [.fd], handling: .special),
        // close_range(first, last, flags) covers a range: trapped always (rare).
        SyscallSpec(N.closeRange, "close_range", [.value, .value, .value], handling: .special, trap: .always),
        SyscallSpec(N.dup, "dup", [.fd], handling: .special),
        SyscallSpec(N.dup2, "dup2", [.fd, .fd], handling: .special),
        SyscallSpec(N.dup3, "dup3", [.fd, .fd, .value], handling: .special),
        SyscallSpec(N.fcntl, "fcntl", [.fd, .value, .value], handling: .special),
        SyscallSpec(N.chdir, "chdir", [.path], handling: .special),
        // fchdir on a local fd must also be seen, to learn the cwd is local again.
        SyscallSpec(N.fchdir, "fchdir", [.fd], handling: .special, trap: .always),
        SyscallSpec(N.getcwd, "getcwd", [.value, .value], handling: .special, trap: .always),
        // ioctl on a guest fd is not redirected (ENOSYS); on a local fd the
        // socket requests about network interfaces are the guest's (ifconfig).
        SyscallSpec(N.ioctl, "ioctl", [.fd, .value, .value], handling: .special,
                    trap: .fdInRangeOrArgumentWithin(fds: [0], argument: 1, lower: InterfaceRequest.firstMachineRequest,
                                                     upper: InterfaceRequest.lastMachineRequest)),
        SyscallSpec(N.socket, "socket", [.value, .value, .value], handling: .special,
                    trap: .argumentEquals(argument: 0, value: addressFamilyNetlink)),
        // A guest netlink socket's calls (the inspector's own sockets stay local).
        SyscallSpec(N.sendto, "sendto", [.fd, .value, .value, .value, .value, .value], handling: .special),
        SyscallSpec(N.recvfrom, "recvfrom", [.fd, .value, .value, .value, .value, .value], handling: .special),
        SyscallSpec(N.sendmsg, "sendmsg", [.fd, .value, .value], handling: .special),
        SyscallSpec(N.recvmsg, "recvmsg", [.fd, .value, .value], handling: .special),
        SyscallSpec(N.bind, "bind", [.fd, .value, .value], handling: .special),
        SyscallSpec(N.getsockname, "getsockname", [.fd, .value, .value], handling: .special),
        SyscallSpec(N.setsockopt, "setsockopt", [.fd, .value, .value, .value, .value], handling: .special),
        SyscallSpec(N.getsockopt, "getsockopt", [.fd, .value, .value, .value, .value], handling: .special),
    ]

    private static func unsupportedFd(_ n: Int, _ name: String, _ fds: [Int], writes: Bool) -> SyscallSpec {
        var roles = [ArgumentRole](repeating: .value, count: (fds.max() ?? 0) + 1)
        for i in fds { roles[i] = .fd }
        return SyscallSpec(n, name, roles, handling: .unsupported(writes: writes))
    }

    private static func unsupportedPath(_ n: Int, _ name: String, dirfd: Int? = nil, path: Int, writes: Bool) -> SyscallSpec {
        var roles = [ArgumentRole](repeating: .value, count: max(path, dirfd ?? 0) + 1)
        if let dirfd { roles[dirfd] = .dirfd }
        roles[path] = .path
        return SyscallSpec(n, name, roles, handling: .unsupported(writes: writes))
    }

    static let unsupported: [SyscallSpec] = [
        unsupportedFd(N.mmap, "mmap", [4], writes: false),
        unsupportedFd(N.writev, "writev", [0], writes: true),
        unsupportedFd(N.sendfile, "sendfile", [0, 1], writes: false),
        unsupportedFd(N.flock, "flock", [0], writes: false),
        unsupportedFd(N.fsync, "fsync", [0], writes: false),
        unsupportedFd(N.fdatasync, "fdatasync", [0], writes: false),
        unsupportedFd(N.ftruncate, "ftruncate", [0], writes: true),
        unsupportedFd(N.fchmod, "fchmod", [0], writes: true),
        unsupportedFd(N.fchown, "fchown", [0], writes: true),
        unsupportedFd(N.readahead, "readahead", [0], writes: false),
        unsupportedFd(N.fsetxattr, "fsetxattr", [0], writes: true),
        unsupportedFd(N.fremovexattr, "fremovexattr", [0], writes: true),
        unsupportedFd(N.fadvise64, "fadvise64", [0], writes: false),
        unsupportedFd(N.epollCtl, "epoll_ctl", [2], writes: false),
        unsupportedFd(N.splice, "splice", [0, 2], writes: false),
        unsupportedFd(N.tee, "tee", [0, 1], writes: false),
        unsupportedFd(N.syncFileRange, "sync_file_range", [0], writes: false),
        unsupportedFd(N.fallocate, "fallocate", [0], writes: true),
        unsupportedFd(N.preadv, "preadv", [0], writes: false),
        unsupportedFd(N.pwritev, "pwritev", [0], writes: true),
        unsupportedFd(N.syncfs, "syncfs", [0], writes: false),
        // Input and output both possible: ENOSYS (tools fall back to read/write).
        unsupportedFd(N.copyFileRange, "copy_file_range", [0, 2], writes: false),
        unsupportedFd(N.preadv2, "preadv2", [0], writes: false),
        unsupportedFd(N.pwritev2, "pwritev2", [0], writes: true),
        unsupportedPath(N.truncate, "truncate", path: 0, writes: true),
        unsupportedPath(N.rename, "rename", path: 0, writes: true),
        unsupportedPath(N.mkdir, "mkdir", path: 0, writes: true),
        unsupportedPath(N.rmdir, "rmdir", path: 0, writes: true),
        unsupportedPath(N.link, "link", path: 0, writes: true),
        unsupportedPath(N.unlink, "unlink", path: 0, writes: true),
        unsupportedPath(N.symlink, "symlink", path: 1, writes: true),
        unsupportedPath(N.chmod, "chmod", path: 0, writes: true),
        unsupportedPath(N.chown, "chown", path: 0, writes: true),
        unsupportedPath(N.lchown, "lchown", path: 0, writes: true),
        unsupportedPath(N.utime, "utime", path: 0, writes: true),
        unsupportedPath(N.mknod, "mknod", path: 0, writes: true),
        unsupportedPath(N.setxattr, "setxattr", path: 0, writes: true),
        unsupportedPath(N.lsetxattr, "lsetxattr", path: 0, writes: true),
        unsupportedPath(N.removexattr, "removexattr", path: 0, writes: true),
        unsupportedPath(N.lremovexattr, "lremovexattr", path: 0, writes: true),
        unsupportedPath(N.utimes, "utimes", path: 0, writes: true),
        unsupportedPath(N.inotifyAddWatch, "inotify_add_watch", path: 1, writes: false),
        unsupportedPath(N.mkdirat, "mkdirat", dirfd: 0, path: 1, writes: true),
        unsupportedPath(N.mknodat, "mknodat", dirfd: 0, path: 1, writes: true),
        unsupportedPath(N.fchownat, "fchownat", dirfd: 0, path: 1, writes: true),
        unsupportedPath(N.futimesat, "futimesat", dirfd: 0, path: 1, writes: true),
        unsupportedPath(N.unlinkat, "unlinkat", dirfd: 0, path: 1, writes: true),
        unsupportedPath(N.renameat, "renameat", dirfd: 0, path: 1, writes: true),
        unsupportedPath(N.renameat2, "renameat2", dirfd: 0, path: 1, writes: true),
        unsupportedPath(N.linkat, "linkat", dirfd: 0, path: 1, writes: true),
        unsupportedPath(N.symlinkat, "symlinkat", dirfd: 1, path: 2, writes: true),
        unsupportedPath(N.fchmodat, "fchmodat", dirfd: 0, path: 1, writes: true),
        unsupportedPath(N.utimensat, "utimensat", dirfd: 0, path: 1, writes: true),
        unsupportedPath(N.nameToHandleAt, "name_to_handle_at", dirfd: 0, path: 1, writes: false),
        unsupportedPath(N.openat2, "openat2", dirfd: 0, path: 1, writes: false),
    ]
}
