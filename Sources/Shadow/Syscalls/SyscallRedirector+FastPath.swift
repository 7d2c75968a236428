import Glibc
import Guest

extension SyscallRedirector {
    /// The most lookups one predicted batch runs (a batch holds S, and on a
    /// GDB target the whole guest, until its last call returns).
    static let maximumBatchLookups = 64
    /// AT_EMPTY_PATH, include/uapi/linux/fcntl.h: fstatat of the dirfd itself.
    static let atEmptyPath: UInt64 = 0x1000

    /// The fast path's answer to `request`, or nil for the one-call way:
    /// calls on a file read ahead, and lookups a batch answers.
    func fastPathReply(_ request: SyscallRequest, _ validate: () throws -> Void,
                       _ installer: GuestFdInstaller) -> SyscallReply? {
        guard let spec = SyscallSpecTable.byNumber[request.number] else { return nil }
        do {
            if let reply = try snapshotReply(spec, request, validate) { return reply }
            guard fastPath != nil, PathLookup.numbers.contains(request.number) else { return nil }
            return try lookupReply(spec, request, validate, installer)
        } catch {
            return reply(to: error, in: spec.name)
        }
    }

    /// A call on a file read ahead: reads within what was read and fstat are
    /// answered from it, close forgets it, calls never redirected for guest
    /// fds are refused as for any guest fd, anything else reopens it in the
    /// guest first (at the same position) and goes the one-call way.
    private func snapshotReply(_ spec: SyscallSpec, _ request: SyscallRequest,
                               _ validate: () throws -> Void) throws -> SyscallReply? {
        let a = request.arguments
        for index in spec.arguments.indices where spec.arguments[index] == .fd || spec.arguments[index] == .dirfd {
            guard let entry = table.entry(rawArgument: a[index]), let snapshot = entry.snapshot else { continue }
            let local = Int32(truncatingIfNeeded: a[index])
            if request.number == LinuxABI.Syscall.close {
                table.remove(local: local)
                countRedirected(spec)
                return .continueLocally
            }
            var statsItself = false
            if request.number == LinuxABI.Syscall.newfstatat && a[3] & Self.atEmptyPath != 0 {
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
            if request.number == LinuxABI.Syscall.read {
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
        if snapshot.offset > 0 {
            let moved = try guestCall(LinuxABI.Syscall.lseek, [UInt64(g), UInt64(snapshot.offset), UInt64(SEEK_SET)], name: "lseek")
            guard moved == Int64(snapshot.offset) else {
                closeGuest(g)
                return moved < 0 ? Int32(-moved) : EIO
            }
        }
        table.insert(local: local, FileDescriptorTable.Entry(guestFd: g, path: entry.path))
        return nil
    }

    /// A lookup answered from a predicted batch or a read-ahead; nil for
    /// the one-call way.
    private func lookupReply(_ spec: SyscallSpec, _ request: SyscallRequest, _ validate: () throws -> Void,
                             _ installer: GuestFdInstaller) throws -> SyscallReply? {
        guard let fastPath, case .guest(let dirfd, _, let absolute?)? = try resolvedPath(spec, request),
              dirfd == Self.atFdcwd, let lookup = PathLookup.of(request, absolute: absolute) else { return nil }
        fastPath.prepare(inspector: inspectorRoot ?? request.pid, warn: diagnostic)
        fastPath.trainer.observe(lookup)
        fastPath.looking(up: lookup)
        let answer: LookupAnswer?
        if let index = fastPath.take(lookup) {
            let pending = fastPath.unanswered(from: index)
            if !pending.isEmpty {
                let count = LookupBatch.fitting(pending, regionSize: executor.regionSize,
                                                readWindow: LookupBatch.sharedReadWindow, limit: Self.maximumBatchLookups)
                guard count > 0 else { return nil }
                try validate()
                let batch = LookupBatch(lookups: Array(pending.prefix(count)), readWindow: LookupBatch.sharedReadWindow)
                fastPath.record(try runBatch(batch), from: index)
            }
            answer = fastPath.answer(at: index)
        } else if lookup.readsAheadSoundly(under: policy) {
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
            let reply = install(guestFd: -1, path: lookup.path, cloexec: lookup.flags & Self.openCloexec != 0,
                                exactly: nil, atLeast: nil, with: installer)
            if case .value(let local) = reply {
                let snapshot = FileDescriptorTable.FileSnapshot(flags: lookup.flags, contents: contents, complete: complete, stat: stat)
                table.insert(local: Int32(local), FileDescriptorTable.Entry(guestFd: -1, path: lookup.path, snapshot: snapshot))
            }
            return reply
        case .stat(let bytes):
            let address = request.number == LinuxABI.Syscall.newfstatat ? a[2] : a[1]
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

    /// Runs `batch`, counting its calls and time like single guest calls.
    private func runBatch(_ batch: LookupBatch) throws -> [LookupAnswer] {
        let start = monotonicNanoseconds()
        defer { addExecutorTime(monotonicNanoseconds() &- start) }
        counters.guestCalls += batch.lookups.reduce(0) { $0 + LookupBatch.cost(of: $1, readWindow: batch.readWindow).calls }
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
              let entry = table.entry(rawArgument: request.arguments[0]), entry.snapshot == nil, entry.path.hasPrefix("/"),
              length <= Int64(Int(clamping: request.arguments[2])),
              let bytes = try? InspectorMemory(pid: request.pid).read(request.arguments[1], count: Int(length)) else { return }
        fastPath.prepare(inspector: inspectorRoot ?? request.pid, warn: diagnostic)
        fastPath.listed(directory: ShadowPolicy.normalize(entry.path), names: DirectoryEntries.names(in: bytes))
    }
}

/// Names in a getdents64 buffer (struct linux_dirent64, include/linux/dirent.h:
/// d_ino at 0, d_off at 8, d_reclen at 16, d_type at 18, d_name at 19).
enum DirectoryEntries {
    static let reclenOffset = 16
    static let nameOffset = 19

    /// The entries' names; a malformed record ends the walk.
    static func names(in bytes: [UInt8]) -> [String] {
        var names: [String] = []
        var offset = 0
        while offset + nameOffset < bytes.count {
            let reclen = Int(bytes[offset + reclenOffset]) | Int(bytes[offset + reclenOffset + 1]) << 8
            guard reclen > nameOffset, reclen <= bytes.count - offset else { break }
            let name = bytes[(offset + nameOffset) ..< (offset + reclen)].prefix { $0 != 0 }
            names.append(String(decoding: name, as: UTF8.self))
            offset += reclen
        }
        return names
    }
}
