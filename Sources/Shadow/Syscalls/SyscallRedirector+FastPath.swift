import Glibc
import Guest

extension SyscallRedirector {
    /// The most lookups one predicted batch runs (a batch holds S, and on a
    /// GDB target the whole guest, until its last call returns).
    static let maximumBatchLookups = 64

    /// The fast path's answer to `request`, or nil for the one-call way:
    /// calls on a file or directory read ahead, and lookups a batch answers.
    func fastPathReply(_ spec: SyscallSpec, _ request: SyscallRequest, _ validate: () throws -> Void,
                       _ installer: GuestFdInstaller) -> SyscallReply? {
        do {
            if let reply = try snapshotReply(spec, request, validate, installer) { return reply }
            guard fastPath != nil, PathLookup.numbers.contains(request.number) else { return nil }
            return try lookupReply(spec, request, validate, installer)
        } catch {
            return reply(to: error, in: spec.name)
        }
    }

    /// A call on a file or directory read ahead: reads (or getdents64)
    /// within what was read and fstat are answered from it, close forgets
    /// it, a lookup relative to a directory may be answered by a batch,
    /// calls never redirected for guest fds are refused as for any guest
    /// fd, anything else reopens it in the guest first (at the same
    /// position) and goes the one-call way.
    private func snapshotReply(_ spec: SyscallSpec, _ request: SyscallRequest, _ validate: () throws -> Void,
                               _ installer: GuestFdInstaller) throws -> SyscallReply? {
        let a = request.arguments
        for index in spec.anyFdArguments {
            guard let entry = table.entry(rawArgument: a[index]), let snapshot = entry.snapshot else { continue }
            let local = Int32(truncatingIfNeeded: a[index])
            if spec.arguments[index] == .dirfd, snapshot.directory, fastPath != nil, PathLookup.numbers.contains(request.number),
               let reply = try lookupReply(spec, request, validate, installer) {
                return reply
            }
            if request.number == LinuxABI.Syscall.close {
                table.remove(local: local)
                countRedirected(spec)
                return .continueLocally
            }
            var statsItself = false
            if request.number == LinuxABI.Syscall.newfstatat && a[3] & LinuxABI.atEmptyPath != 0 {
                statsItself = try InspectorMemory(pid: request.pid).readPath(a[1]).isEmpty
            }
            if request.number == LinuxABI.Syscall.fstat || statsItself {
                let address = request.number == LinuxABI.Syscall.fstat ? a[1] : a[2]
                try validate()
                try InspectorMemory(pid: request.pid).write(address, snapshot.stat)
                countRedirected(spec)
                fastPath?.countSnapshotRead()
                return .value(0)
            }
            if snapshot.directory, let reply = try directoryReply(spec, request, local, entry, validate) { return reply }
            if request.number == LinuxABI.Syscall.read && !snapshot.directory {
                let asked = Int(clamping: a[2])
                let available = snapshot.contents.count - snapshot.offset
                if snapshot.complete || asked <= available {
                    let count = min(asked, available)
                    try validate()
                    if count > 0 {
                        try InspectorMemory(pid: request.pid).write(a[1], Array(snapshot.contents[snapshot.offset ..< snapshot.offset + count]))
                    }
                    var advanced = entry
                    advanced.snapshot?.offset += count
                    table.insert(local: local, advanced)
                    countRedirected(spec)
                    fastPath?.countSnapshotRead()
                    return .value(Int64(count))
                }
            }
            // A call not redirected for guest fds is refused the same way
            // for a snapshot (dispatch says so); reopening would gain nothing.
            if case .unsupported = spec.handling { return nil }
            if let failure = try reopen(local, entry, snapshot) { return .error(failure) }
        }
        return nil
    }

    /// Gives local fd `local` a real guest fd again: the file opened anew
    /// with its flags and moved to the inspector's position. Returns the
    /// errno when that fails (the file is gone, say).
    private func reopen(_ local: Int32, _ entry: FileDescriptorTable.Entry,
                        _ snapshot: FileDescriptorTable.FileSnapshot) throws -> Int32? {
        var cursor = RegionCursor(base: executor.regionAddress, size: executor.regionSize)
        let address = try place(path: Array(entry.path.utf8), &cursor)
        let opened = try guestCall(LinuxABI.Syscall.openat, [LookupBatch.atFdcwd, address, snapshot.flags, 0], name: "openat")
        if opened < 0 { return Int32(-opened) }
        let g = try guestFd(opened, "openat")
        let position = snapshot.guestPosition
        if position > 0 {
            let moved = try guestCall(LinuxABI.Syscall.lseek, [UInt64(g), position, UInt64(SEEK_SET)], name: "lseek")
            guard moved == Int64(bitPattern: position) else {
                closeGuest(g)
                return moved < 0 ? Int32(-moved) : EIO
            }
        }
        table.insert(local: local, FileDescriptorTable.Entry(guestFd: g, path: entry.path))
        // A path resolved against the snapshot named no guest fd; this call's goes through the new one.
        forgetResolvedPath()
        return nil
    }

    /// A call on a directory read ahead that its snapshot answers: read
    /// fails with EISDIR, as the guest's would; getdents64 is given the next
    /// whole records that fit (EINVAL when none fits, 0 once a complete
    /// listing is passed). nil: anything else, or the listing is used up
    /// before its end (the directory is reopened at the guest's position).
    private func directoryReply(_ spec: SyscallSpec, _ request: SyscallRequest, _ local: Int32,
                                _ entry: FileDescriptorTable.Entry, _ validate: () throws -> Void) throws -> SyscallReply? {
        guard var snapshot = entry.snapshot else { return nil }
        if request.number == LinuxABI.Syscall.read {
            countRedirected(spec)
            return .error(EISDIR)
        }
        guard request.number == LinuxABI.Syscall.getdents64 else { return nil }
        let a = request.arguments
        let room = Int(UInt32(truncatingIfNeeded: a[2]))  // getdents64's count is an unsigned int
        let count = DirectoryRecords.prefix(from: snapshot.offset, fitting: room, in: snapshot.contents)
        if count == 0 {
            if snapshot.offset < snapshot.contents.count {
                countRedirected(spec)
                return .error(EINVAL)  // the buffer cannot hold the next record
            }
            guard snapshot.complete else { return nil }
        }
        try validate()
        if count > 0 {
            try InspectorMemory(pid: request.pid).write(a[1], Array(snapshot.contents[snapshot.offset ..< snapshot.offset + count]))
        }
        snapshot.offset += count
        var advanced = entry
        advanced.snapshot = snapshot
        table.insert(local: local, advanced)
        countRedirected(spec)
        fastPath?.countSnapshotRead()
        return .value(Int64(count))
    }

    /// A lookup answered from a predicted batch or a read-ahead; nil for
    /// the one-call way.
    private func lookupReply(_ spec: SyscallSpec, _ request: SyscallRequest, _ validate: () throws -> Void,
                             _ installer: GuestFdInstaller) throws -> SyscallReply? {
        guard let fastPath, case .guest(let dirfd, let path, let absolute?)? = try resolvedPath(spec, request) else { return nil }
        let relative = dirfd != Self.atFdcwd
        // A batch asks by the lexically normal path; after a ".." the guest's
        // own walk may differ (a symlink's parent is not its link's), so such
        // a path goes the one-call way.
        guard !relative || relativeToDirectorySnapshot(spec, request), !Self.hasParentComponent(path),
              let lookup = PathLookup.of(request, absolute: absolute, emptyPath: path.isEmpty) else { return nil }
        fastPath.prepare(inspector: inspectorRoot ?? request.pid, warn: diagnostic)
        fastPath.trainer.observe(lookup)
        fastPath.looking(up: lookup)
        let answer: LookupAnswer?
        if let slot = fastPath.take(lookup) {
            let pending = fastPath.unanswered(from: slot)
            if !pending.isEmpty {
                let count = LookupBatch.fitting(pending, regionSize: executor.regionSize,
                                                readWindow: LookupBatch.sharedReadWindow, limit: Self.maximumBatchLookups)
                guard count > 0 else { return nil }
                try validate()
                let batch = LookupBatch(lookups: Array(pending.prefix(count)), readWindow: LookupBatch.sharedReadWindow)
                fastPath.record(try runBatch(batch), from: slot)
            }
            answer = fastPath.answer(at: slot)
        } else if lookup.readsAheadSoundly(under: policy) || (relative && lookup.kind != .open) {
            // Read ahead; or a stat of (or in) a directory read ahead, asked
            // by its path: it has no guest fd to be asked through.
            let window = min(LookupBatch.soleReadWindow, executor.regionSize / 2)
            guard LookupBatch.fitting([lookup], regionSize: executor.regionSize, readWindow: window, limit: 1) == 1 else { return nil }
            try validate()
            answer = try runBatch(LookupBatch(lookups: [lookup], readWindow: window)).first
            if answer != .unusable { fastPath.countReadAhead() }
        } else {
            return nil
        }
        guard let answer, answer != .unusable else { return nil }
        try validate()
        countRedirected(spec)
        let a = request.arguments
        switch answer {
        case .unusable:
            return nil
        case .error(let e):
            return .error(e)
        case .file(let contents, let complete, let stat):
            let reply = install(guestFd: -1, path: lookup.path, cloexec: lookup.flags & LinuxABI.oCloexec != 0,
                                exactly: nil, atLeast: nil, with: installer)
            if case .value(let local) = reply {
                let snapshot = FileDescriptorTable.FileSnapshot(flags: lookup.flags, contents: contents, complete: complete, stat: stat)
                table.insert(local: Int32(local), FileDescriptorTable.Entry(guestFd: -1, path: lookup.path, snapshot: snapshot))
            }
            return reply
        case .directory(let listing, let complete, let stat):
            let reply = install(guestFd: -1, path: lookup.path, cloexec: lookup.flags & LinuxABI.oCloexec != 0,
                                exactly: nil, atLeast: nil, with: installer)
            if case .value(let local) = reply {
                let snapshot = FileDescriptorTable.FileSnapshot(flags: lookup.flags, contents: listing, complete: complete, stat: stat,
                                                                directory: true)
                table.insert(local: Int32(local), FileDescriptorTable.Entry(guestFd: -1, path: lookup.path, snapshot: snapshot))
            }
            return reply
        case .stat(let bytes):  // a struct stat, or statfs's struct statfs, or statx's struct statx
            let address = switch request.number {
            case LinuxABI.Syscall.newfstatat: a[2]
            case LinuxABI.Syscall.statx: a[4]
            default: a[1]
            }
            guard address != 0 else { return .error(EFAULT) }
            try InspectorMemory(pid: request.pid).write(address, bytes)
            return .value(0)
        case .link(let bytes):
            let address = request.number == LinuxABI.Syscall.readlink ? a[1] : a[2]
            let count = min(bytes.count, Int(lookup.flags))
            if count > 0 { try InspectorMemory(pid: request.pid).write(address, Array(bytes.prefix(count))) }
            return .value(Int64(count))
        }
    }

    /// Whether `path` has a ".." component.
    static func hasParentComponent(_ path: [UInt8]) -> Bool {
        path.split(separator: UInt8(ascii: "/")).contains { $0.count == 2 && $0.allSatisfy { $0 == UInt8(ascii: ".") } }
    }

    /// Whether `request`'s dirfd is a directory read ahead (its path, and so
    /// the lookup's, is known; it has no guest fd to be relative to).
    private func relativeToDirectorySnapshot(_ spec: SyscallSpec, _ request: SyscallRequest) -> Bool {
        guard let index = spec.dirfdArgument, let entry = table.entry(rawArgument: request.arguments[index]) else { return false }
        return entry.snapshot?.directory == true && entry.path.hasPrefix("/")
    }

    /// Runs `batch`, counting its calls like single guest calls.
    private func runBatch(_ batch: LookupBatch) throws -> [LookupAnswer] {
        tally.guestCalls += batch.lookups.reduce(0) { $0 + LookupBatch.cost(of: $1, readWindow: batch.readWindow).calls }
        do {
            return try batch.run(on: executor)
        } catch let error as SupervisorError {
            throw error
        } catch {
            throw SupervisorError.executor("a batch of \(batch.lookups.count) lookups: \(error)")
        }
    }

    /// After a call: a directory listing the inspector received feeds the
    /// fast path (its memo is looked up at the first one).
    func observeListing(_ request: SyscallRequest, _ reply: SyscallReply) {
        guard let fastPath, request.number == LinuxABI.Syscall.getdents64, case .value(let length) = reply, length > 0,
              let entry = table.entry(rawArgument: request.arguments[0]), entry.path.hasPrefix("/"),
              length <= Int64(Int(clamping: request.arguments[2])),
              let bytes = try? InspectorMemory(pid: request.pid).read(request.arguments[1], count: Int(length)) else { return }
        fastPath.prepare(inspector: inspectorRoot ?? request.pid, warn: diagnostic)
        fastPath.listed(directory: ShadowPolicy.normalize(entry.path), names: DirectoryRecords.names(in: bytes))
    }
}
