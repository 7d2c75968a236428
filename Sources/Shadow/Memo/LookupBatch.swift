import Glibc
import Guest

/// What the guest answered to one `PathLookup` run in a batch.
enum LookupAnswer: Equatable {
    /// The call failed with this errno.
    case error(Int32)
    /// open: the file's bytes read right after opening it (`complete`: a
    /// read returned 0 after them) and its fstat; the batch closed it again.
    case file(contents: [UInt8], complete: Bool, stat: [UInt8])
    /// open of a directory: its fstat and, when opened with O_DIRECTORY, the
    /// getdents64 records read right after opening it (`complete`: a second
    /// getdents64 returned 0); without O_DIRECTORY no listing (the read failed
    /// with EISDIR).
    case directory(listing: [UInt8], complete: Bool, stat: [UInt8])
    /// stat: the guest's struct stat; statfs: its struct statfs; statx: its struct statx.
    case stat([UInt8])
    /// readlink: the link's bytes.
    case link([UInt8])
    /// Not answerable from the batch (a read that failed: a directory, say;
    /// a link longer than the buffer): the call goes the one-call way.
    case unusable
}

/// Runs lookups as one batch in S: each open becomes openat, fstat, read,
/// a one-byte read (0: the file ended) and close, or for O_DIRECTORY
/// openat, fstat, getdents64, a getdents64 room for one more record (0: the
/// listing ended) and close; a stat newfstatat; a readlink readlinkat; a
/// statfs statfs; a statx statx.
/// Every result is bounded before use.
struct LookupBatch {
    /// Bytes an open's first read asks for when many lookups share the region.
    static let sharedReadWindow = 4096
    /// The most a single read-ahead asks for.
    static let soleReadWindow = 32 << 10
    /// The most a readlink asks for (PATH_MAX, include/uapi/linux/limits.h).
    static let linkWindow = 4096
    static let atFdcwd = UInt64(bitPattern: Int64(LinuxABI.atFDCWD))

    let lookups: [PathLookup]
    let readWindow: Int

    /// How many calls and region bytes `lookup` needs with `readWindow`.
    static func cost(of lookup: PathLookup, readWindow: Int) -> (calls: Int, bytes: Int) {
        let path = align(lookup.path.utf8.count + 1)
        switch lookup.kind {
        case .open: return (5, path + KernelStructSize.stat + align(readWindow) + align(secondWindow(of: lookup)))
        case .stat: return (1, path + KernelStructSize.stat)
        case .readlink: return (1, path + align(min(Int(lookup.flags), linkWindow)))
        case .statfs: return (1, path + KernelStructSize.statfs)
        case .statx: return (1, path + KernelStructSize.statx)
        }
    }

    static func align(_ n: Int) -> Int { (n + 7) & ~7 }

    /// What an open's second read asks for: one byte of a file (any says
    /// more follows), one whole record of a directory.
    static func secondWindow(of lookup: PathLookup) -> Int {
        lookup.opensDirectory ? DirectoryRecords.largestRecord : 1
    }

    /// The longest prefix of `lookups` that fits a region of `regionSize`
    /// bytes (at most `limit` lookups, at least none).
    static func fitting(_ lookups: ArraySlice<PathLookup>, regionSize: Int, readWindow: Int, limit: Int) -> Int {
        var used = 0, count = 0
        for lookup in lookups.prefix(limit) {
            let (calls, bytes) = cost(of: lookup, readWindow: readWindow)
            let next = used + BatchTable.size(of: calls) + bytes + 8
            if next > regionSize { break }
            used = next
            count += 1
        }
        return count
    }

    /// Runs the batch through `executor` and returns one answer per lookup.
    func run(on executor: GuestSyscallExecutor) throws -> [LookupAnswer] {
        let callCount = lookups.reduce(0) { $0 + Self.cost(of: $1, readWindow: readWindow).calls }
        var cursor = RegionCursor(base: executor.regionAddress, size: executor.regionSize)
        let tableOffset = try cursor.reserve(BatchTable.size(of: callCount))
        // Paths go in one write, right after the table; outputs follow.
        let pathsOffset = try cursor.reserve(0)
        var pathBytes: [UInt8] = []
        var pathAddresses: [UInt64] = []
        for lookup in lookups {
            pathAddresses.append(cursor.address(pathsOffset + pathBytes.count))
            pathBytes += Array(lookup.path.utf8) + [0]
            pathBytes += [UInt8](repeating: 0, count: Self.align(pathBytes.count) - pathBytes.count)
        }
        _ = try cursor.reserve(pathBytes.count)
        var calls: [BatchedCall] = []
        var outputs: [(first: Int, second: Int, size: Int, stat: Int)] = []
        for (lookup, pathAddress) in zip(lookups, pathAddresses) {
            switch lookup.kind {
            case .open:
                let stat = try cursor.reserve(KernelStructSize.stat)
                let secondSize = Self.secondWindow(of: lookup)
                let first = try cursor.reserve(readWindow), second = try cursor.reserve(secondSize)
                let read = lookup.opensDirectory ? LinuxABI.Syscall.getdents64 : LinuxABI.Syscall.read
                // O_CLOEXEC: the batch's fds never outlive it, but a fork in S must not see them either.
                calls.append(BatchedCall(LinuxABI.Syscall.openat, [Self.atFdcwd, pathAddress, lookup.flags | LinuxABI.oCloexec, 0]))
                calls.append(BatchedCall(LinuxABI.Syscall.fstat, [0, cursor.address(stat)], references: [0: 1]))
                calls.append(BatchedCall(read, [0, cursor.address(first), UInt64(readWindow)], references: [0: 2]))
                calls.append(BatchedCall(read, [0, cursor.address(second), UInt64(secondSize)], references: [0: 3]))
                calls.append(BatchedCall(LinuxABI.Syscall.close, [0], references: [0: 4]))
                outputs.append((first, second, readWindow, stat))
            case .stat:
                let out = try cursor.reserve(KernelStructSize.stat)
                calls.append(BatchedCall(LinuxABI.Syscall.newfstatat, [Self.atFdcwd, pathAddress, cursor.address(out), lookup.flags]))
                outputs.append((out, 0, KernelStructSize.stat, 0))
            case .readlink:
                let size = min(Int(lookup.flags), Self.linkWindow)
                let out = try cursor.reserve(size)
                calls.append(BatchedCall(LinuxABI.Syscall.readlinkat, [Self.atFdcwd, pathAddress, cursor.address(out), UInt64(size)]))
                outputs.append((out, 0, size, 0))
            case .statfs:
                let out = try cursor.reserve(KernelStructSize.statfs)
                calls.append(BatchedCall(LinuxABI.Syscall.statfs, [pathAddress, cursor.address(out)]))
                outputs.append((out, 0, KernelStructSize.statfs, 0))
            case .statx:
                let out = try cursor.reserve(KernelStructSize.statx)
                calls.append(BatchedCall(LinuxABI.Syscall.statx, [Self.atFdcwd, pathAddress, lookup.flags & 0xFFFF_FFFF,
                                                                  lookup.flags >> 32, cursor.address(out)]))
                outputs.append((out, 0, KernelStructSize.statx, 0))
            }
        }
        try executor.writeRegion(offset: pathsOffset, pathBytes)
        let results = try executor.syscalls(calls, tableOffset: tableOffset)
        guard results.count == calls.count else {
            throw SupervisorError.executor("a batch of \(calls.count) calls returned \(results.count) results")
        }
        var answers: [LookupAnswer] = []
        var index = 0
        for (lookup, output) in zip(lookups, outputs) {
            let answer: LookupAnswer
            switch lookup.kind {
            case .open:
                answer = try file(lookup, results[index ..< index + 5], output, executor)
                index += 5
            case .stat, .statfs, .statx:
                let r = try Self.checked(results[index], limit: 0, lookup.kind.rawValue)
                answer = r < 0 ? .error(Int32(-r)) : .stat(try Self.bytes(executor, output.first, output.size))
                index += 1
            case .readlink:
                let r = try Self.checked(results[index], limit: Int64(output.size), "readlinkat")
                if r < 0 {
                    answer = .error(Int32(-r))
                } else if r == Int64(output.size) && output.size < Int(lookup.flags) {
                    answer = .unusable  // perhaps cut short by the smaller buffer
                } else {
                    answer = .link(try Self.bytes(executor, output.first, Int(r)))
                }
                index += 1
            }
            answers.append(answer)
        }
        return answers
    }

    /// The answer of an open's five results: openat, fstat, two reads (or
    /// getdents64s), close.
    private func file(_ lookup: PathLookup, _ r: ArraySlice<Int64>, _ output: (first: Int, second: Int, size: Int, stat: Int),
                      _ executor: GuestSyscallExecutor) throws -> LookupAnswer {
        let opened = try Self.checked(r[r.startIndex], limit: Int64(Int32.max), "openat")
        if opened < 0 { return .error(Int32(-opened)) }
        let stat = try Self.checked(r[r.startIndex + 1], limit: 0, "fstat")
        let first = try Self.checked(r[r.startIndex + 2], limit: Int64(output.size), "read")
        let second = try Self.checked(r[r.startIndex + 3], limit: Int64(Self.secondWindow(of: lookup)), "read")
        guard stat == 0 else { return .unusable }
        if !lookup.opensDirectory && first == -Int64(EISDIR) {
            return .directory(listing: [], complete: false, stat: try Self.bytes(executor, output.stat, KernelStructSize.stat))
        }
        guard first >= 0, second >= 0 else { return .unusable }
        let contents = try Self.bytes(executor, output.first, Int(first)) + Self.bytes(executor, output.second, Int(second))
        let statBytes = try Self.bytes(executor, output.stat, KernelStructSize.stat)
        guard lookup.opensDirectory else { return .file(contents: contents, complete: second == 0, stat: statBytes) }
        // Records the inspector's getdents64 will be given a prefix of: whole ones only.
        guard DirectoryRecords.isWellFormed(contents) else { return .unusable }
        return .directory(listing: contents, complete: second == 0, stat: statBytes)
    }

    /// `result` when it is -errno or at most `limit`; a guest that answers
    /// more than it was asked is broken, and the run ends (EIO).
    static func checked(_ result: Int64, limit: Int64, _ call: String) throws -> Int64 {
        guard result >= -LinuxABI.maximumErrno, result <= limit else {
            throw SupervisorError.guestResultOutOfRange(call: call, result: result, limit: limit)
        }
        return result
    }

    /// The region's bytes (none read for none: a GDB target is spared a packet).
    static func bytes(_ executor: GuestSyscallExecutor, _ offset: Int, _ count: Int) throws -> [UInt8] {
        count > 0 ? try executor.regionBytes(offset, count) : []
    }
}
