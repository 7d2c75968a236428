import Glibc

extension SyscallRedirector {
    // Flags and commands, include/uapi/asm-generic/fcntl.h and
    // include/uapi/linux/close_range.h.
    static let openCreateWriteTruncate: UInt64 = 0o100 | 0o1 | 0o1000
    static let fcntlDupfd: Int32 = 0
    static let fcntlGetfd: Int32 = 1
    static let fcntlSetfd: Int32 = 2
    static let fcntlGetfl: Int32 = 3
    static let fcntlSetfl: Int32 = 4
    /// F_DUPFD_CLOEXEC = F_LINUX_SPECIFIC_BASE (1024) + 6.
    static let fcntlDupfdCloexec: Int32 = 1030
    /// CLOSE_RANGE_CLOEXEC = 1 << 2.
    static let closeRangeCloexec: UInt64 = 1 << 2
    /// S_IFMT / S_IFDIR, include/uapi/linux/stat.h; st_mode is at offset 24
    /// of x86_64's struct stat (after st_dev, st_ino, st_nlink).
    static let modeTypeMask: UInt32 = 0o170000
    static let modeDirectory: UInt32 = 0o040000
    static let statModeOffset = 24

    /// Calls that need the fd table or the cwd.
    func special(_ spec: SyscallSpec, _ request: SyscallRequest, _ validate: () throws -> Void,
                 _ installer: GuestFdInstaller) throws -> SyscallReply {
        let a = request.arguments
        switch spec.number {
        case LinuxABI.Syscall.open, LinuxABI.Syscall.openat, LinuxABI.Syscall.creat:
            return try open(spec, request, validate, installer)
        case LinuxABI.Syscall.close:
            guard let entry = table.entry(rawArgument: a[0]) else { return .continueLocally }
            // The guest side closes here; the local placeholder closes when the
            // call continues (so no remote close is needed).
            closeGuest(entry.guestFd)
            table.remove(local: request.int32(0))
            countRedirected(spec)
            return .continueLocally
        case LinuxABI.Syscall.closeRange:
            if a[2] & Self.closeRangeCloexec != 0 { return .continueLocally }
            let first = Int32(clamping: Int64(UInt32(truncatingIfNeeded: a[0])))
            let last = Int32(clamping: Int64(UInt32(truncatingIfNeeded: a[1])))
            for local in table.locals(in: first, last) {
                if let entry = table.remove(local: local) { closeGuest(entry.guestFd) }
            }
            return .continueLocally
        case LinuxABI.Syscall.dup:
            guard let entry = table.entry(rawArgument: a[0]) else { return .continueLocally }
            let g = try guestFd(guestCall(LinuxABI.Syscall.dup, [UInt64(entry.guestFd)], name: "dup"), "dup")
            countRedirected(spec)
            return install(guestFd: g, path: entry.path, netlink: entry.netlink, cloexec: false, exactly: nil, atLeast: nil, with: installer)
        case LinuxABI.Syscall.dup2, LinuxABI.Syscall.dup3:
            return try dup2(spec, request, installer)
        case LinuxABI.Syscall.fcntl:
            return try fcntl(spec, request, installer)
        case LinuxABI.Syscall.chdir:
            return try chdir(spec, request, validate)
        case LinuxABI.Syscall.fchdir:
            return try fchdir(spec, request)
        case LinuxABI.Syscall.getcwd:
            guard case .guest(let directory) = cwd else { return .continueLocally }
            let bytes = Array(directory.utf8) + [0]
            guard a[1] >= UInt64(bytes.count) else { return .error(ERANGE) }
            try InspectorMemory(pid: request.pid).write(a[0], bytes)
            countRedirected(spec)
            return .value(Int64(bytes.count))
        case LinuxABI.Syscall.ioctl:
            if table.entry(rawArgument: a[0]) != nil { return refuse(spec, ENOSYS, "ioctl on a guest fd is not redirected") }
            return try interfaceRequest(spec, request, validate)
        case LinuxABI.Syscall.socket:
            guard UInt32(truncatingIfNeeded: a[0]) == SyscallSpecTable.addressFamilyNetlink else { return .continueLocally }
            return try netlinkSocket(spec, request, validate, installer)
        case LinuxABI.Syscall.sendto, LinuxABI.Syscall.sendmsg, LinuxABI.Syscall.bind, LinuxABI.Syscall.getsockname,
             LinuxABI.Syscall.setsockopt, LinuxABI.Syscall.getsockopt, LinuxABI.Syscall.recvfrom, LinuxABI.Syscall.recvmsg:
            return try netlinkCall(spec, request, validate)
        default:
            return .continueLocally
        }
    }

    private func open(_ spec: SyscallSpec, _ request: SyscallRequest, _ validate: () throws -> Void,
                      _ installer: GuestFdInstaller) throws -> SyscallReply {
        let a = request.arguments
        let flags: UInt64, mode: UInt64
        switch spec.number {
        case LinuxABI.Syscall.openat: flags = a[2]; mode = a[3]
        case LinuxABI.Syscall.creat: flags = Self.openCreateWriteTruncate; mode = a[1]
        default: flags = a[1]; mode = a[2]
        }
        guard let resolved = try resolvedPath(spec, request) else { return .error(EFAULT) }
        let dirfd: Int32, path: [UInt8], absolute: String?
        switch resolved {
        case .local: return .continueLocally
        case .unsupported(let why): return refuse(spec, ENOSYS, why)
        case .guest(let d, let p, let abs): dirfd = d; path = p; absolute = abs
        }
        let shown = absolute ?? String(decoding: path, as: UTF8.self)
        if ShadowPolicy.openWrites(flags: flags) && !policy.allowWrites {
            return refuse(spec, EROFS, "opening guest path \(shown) for writing without --allow-writes")
        }
        var cursor = RegionCursor(base: executor.regionAddress, size: executor.regionSize)
        let pathAddress = try place(path: path, &cursor)
        try validate()
        let nonBlocking = absolute.map(policy.forcesNonBlocking) == true
        if nonBlocking && flags & ShadowPolicy.openNonBlocking == 0 && verbose {
            diagnostic("swvmm: \(spec.name) \(shown): opened O_NONBLOCK in the guest, so a read past its end answers EAGAIN instead of parking S")
        }
        let guestFlags = nonBlocking ? flags | ShadowPolicy.openNonBlocking : flags
        // Every open becomes openat in the guest (it exists on every x86_64 kernel).
        let result = try guestCall(LinuxABI.Syscall.openat,
                                   [UInt64(bitPattern: Int64(dirfd)), pathAddress, guestFlags, mode], name: spec.name)
        countRedirected(spec)
        if result < 0 { return .error(Int32(-result)) }
        let g = try guestFd(result, spec.name)
        return install(guestFd: g, path: shown, cloexec: flags & LinuxABI.oCloexec != 0, exactly: nil, atLeast: nil, with: installer)
    }

    private func dup2(_ spec: SyscallSpec, _ request: SyscallRequest, _ installer: GuestFdInstaller) throws -> SyscallReply {
        let a = request.arguments
        let old = request.int32(0), new = request.int32(1)
        let isDup3 = spec.number == LinuxABI.Syscall.dup3
        guard let oldEntry = table.entry(rawArgument: a[0]) else {
            // A local fd onto a placeholder: the local dup replaces it, so the
            // guest fd behind it goes now.
            if let replaced = table.entry(rawArgument: a[1]) {
                closeGuest(replaced.guestFd)
                table.remove(local: new)
            }
            return .continueLocally
        }
        if old == new { return isDup3 ? .error(EINVAL) : .value(Int64(new)) }
        guard table.range.contains(rawArgument: a[1]) else {
            // `cmd < /proc/x`: the target fd is one the seccomp filter does not
            // watch, so later calls on it could not reach the guest. It gets a
            // sealed local copy of the file's contents, read now.
            return try snapshot(spec, oldEntry, onto: new, cloexec: isDup3 && a[2] & LinuxABI.oCloexec != 0, installer)
        }
        let g = try guestFd(guestCall(LinuxABI.Syscall.dup, [UInt64(oldEntry.guestFd)], name: spec.name), spec.name)
        if let replaced = table.remove(local: new) { closeGuest(replaced.guestFd) }
        countRedirected(spec)
        let cloexec = isDup3 && a[2] & LinuxABI.oCloexec != 0
        return install(guestFd: g, path: oldEntry.path, netlink: oldEntry.netlink, cloexec: cloexec, exactly: new, atLeast: nil, with: installer)
    }

    private func fcntl(_ spec: SyscallSpec, _ request: SyscallRequest, _ installer: GuestFdInstaller) throws -> SyscallReply {
        guard let entry = table.entry(rawArgument: request.arguments[0]) else { return .continueLocally }
        let command = request.int32(1)
        switch command {
        case Self.fcntlGetfd, Self.fcntlSetfd:
            // FD_CLOEXEC belongs to the local placeholder: it decides what an exec keeps.
            return .continueLocally
        case Self.fcntlDupfd, Self.fcntlDupfdCloexec:
            let minimum = request.int32(2)
            guard minimum >= 0, minimum < table.range.upperBound else { return .error(EINVAL) }
            let g = try guestFd(guestCall(LinuxABI.Syscall.dup, [UInt64(entry.guestFd)], name: "fcntl"), "fcntl")
            countRedirected(spec)
            return install(guestFd: g, path: entry.path, netlink: entry.netlink, cloexec: command == Self.fcntlDupfdCloexec,
                           exactly: nil, atLeast: minimum, with: installer)
        case Self.fcntlGetfl, Self.fcntlSetfl:
            // A file that must not block keeps O_NONBLOCK whatever F_SETFL asks.
            var flags = request.arguments[2]
            if command == Self.fcntlSetfl && policy.forcesNonBlocking(absolutePath: entry.path) { flags |= ShadowPolicy.openNonBlocking }
            let result = try guestCall(LinuxABI.Syscall.fcntl,
                                       [UInt64(entry.guestFd), UInt64(UInt32(bitPattern: command)), flags],
                                       name: "fcntl")
            countRedirected(spec)
            return result < 0 ? .error(Int32(-result)) : .value(result)
        default:
            return refuse(spec, ENOSYS, "fcntl command \(command) on a guest fd")
        }
    }

    private func chdir(_ spec: SyscallSpec, _ request: SyscallRequest, _ validate: () throws -> Void) throws -> SyscallReply {
        guard let resolved = try resolvedPath(spec, request) else { return .error(EFAULT) }
        switch resolved {
        case .unsupported(let why):
            return refuse(spec, ENOSYS, why)
        case .local:
            if case .guest = cwd {
                let text = String(decoding: try InspectorMemory(pid: request.pid).readPath(request.arguments[0]), as: UTF8.self)
                guard text.hasPrefix("/") else {
                    return refuse(spec, ENOSYS, "relative chdir from a guest directory to a local one")
                }
            }
            cwd = .local
            return .continueLocally
        case .guest(let dirfd, let path, let absolute):
            guard let absolute, dirfd == Self.atFdcwd else { return refuse(spec, ENOSYS, "chdir to an unresolvable guest path") }
            // The guest checks the directory (O_PATH|O_DIRECTORY); S's own cwd
            // is left alone and the inspector's guest cwd is tracked here.
            var cursor = RegionCursor(base: executor.regionAddress, size: executor.regionSize)
            let address = try place(path: path, &cursor)
            try validate()
            let result = try guestCall(LinuxABI.Syscall.openat,
                                       [UInt64(bitPattern: Int64(Self.atFdcwd)), address,
                                        LinuxABI.oPath | LinuxABI.oDirectory | LinuxABI.oCloexec, 0], name: "chdir")
            countRedirected(spec)
            if result < 0 { return .error(Int32(-result)) }
            closeGuest(try guestFd(result, "chdir"))
            cwd = .guest(absolute)
            return .value(0)
        }
    }

    private func fchdir(_ spec: SyscallSpec, _ request: SyscallRequest) throws -> SyscallReply {
        guard let entry = table.entry(rawArgument: request.arguments[0]) else {
            cwd = .local
            return .continueLocally
        }
        guard entry.path.hasPrefix("/") else { return refuse(spec, ENOSYS, "fchdir to a guest fd of unknown path") }
        var cursor = RegionCursor(base: executor.regionAddress, size: executor.regionSize)
        let offset = try cursor.reserve(KernelStructSize.stat)
        let result = try guestCall(LinuxABI.Syscall.fstat, [UInt64(entry.guestFd), cursor.address(offset)], name: "fchdir")
        countRedirected(spec)
        if result < 0 { return .error(Int32(-result)) }
        let stat = try regionBytes(offset, KernelStructSize.stat)
        let mode = UInt32(truncatingIfNeeded: Self.loadUInt64(stat, Self.statModeOffset))
        guard mode & Self.modeTypeMask == Self.modeDirectory else { return .error(ENOTDIR) }
        cwd = .guest(ShadowPolicy.normalize(entry.path))
        return .value(0)
    }
}
