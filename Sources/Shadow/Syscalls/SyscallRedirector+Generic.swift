import Guest
import Glibc

extension SyscallRedirector {
    /// Where one output goes after the guest call.
    enum Output {
        /// Up to `limit` bytes, as many as the result says.
        case buffer(offset: Int, address: UInt64, limit: Int)
        /// Exactly `size` bytes when the result is 0.
        case fixed(offset: Int, address: UInt64, size: Int)
        /// As many bytes as the result says (≤ limit), scattered over iovecs.
        case scatter(offset: Int, iovecs: [(address: UInt64, length: Int)], limit: Int)
    }

    /// Calls described completely by their argument roles.
    func generic(_ spec: SyscallSpec, _ request: SyscallRequest, _ validate: () throws -> Void) throws -> SyscallReply {
        // Route first: a path call follows its path, an fd call its fd.
        var resolved: ResolvedPath?
        if spec.pathArgument != nil {
            resolved = try resolvedPath(spec, request)
            switch resolved {
            case .local?: return .continueLocally
            case .unsupported(let why)?: return refuse(spec, ENOSYS, why)
            case nil:
                // A NULL path: the kernel would fault (or use the dirfd with
                // AT_EMPTY_PATH, which needs a "" string, not NULL).
                if let d = spec.dirfdArgument, table.entry(rawArgument: request.arguments[d]) != nil {
                    return refuse(spec, EFAULT, "NULL path")
                }
                return .continueLocally
            case .guest?: break
            }
        } else if let fdIndex = spec.fdArguments.first, table.entry(rawArgument: request.arguments[fdIndex]) == nil {
            return .continueLocally
        }

        let memory = InspectorMemory(pid: request.pid)
        var cursor = RegionCursor(base: executor.regionAddress, size: executor.regionSize)
        var number = spec.number
        var arguments = request.arguments
        var outputs: [Output] = []

        for (index, role) in spec.arguments.enumerated() {
            switch role {
            case .value:
                break
            case .fd:
                guard let entry = table.entry(rawArgument: request.arguments[index]) else {
                    return .error(EBADF)
                }
                arguments[index] = UInt64(UInt32(bitPattern: entry.guestFd))
            case .dirfd:
                // Filled in with the path.
                break
            case .path:
                guard case .guest(let dirfd, let path, _)? = resolved else { return .error(EFAULT) }
                arguments[index] = try place(path: path, &cursor)
                if let d = spec.dirfdArgument {
                    arguments[d] = UInt64(bitPattern: Int64(dirfd))
                } else if dirfd != Self.atFdcwd {
                    return refuse(spec, ENOSYS, "path relative to a guest fd without a dirfd argument")
                }
            case .inBuffer(let lengthIndex):
                let asked = Int(clamping: request.arguments[lengthIndex])
                let length = min(asked, cursor.remaining)
                let offset = try cursor.reserve(length)
                let bytes = try memory.read(request.arguments[index], count: length)
                try executor.writeRegion(offset: offset, bytes)
                arguments[index] = cursor.address(offset)
                arguments[lengthIndex] = UInt64(length)
            case .outBuffer(let lengthIndex):
                var asked = Int(clamping: request.arguments[lengthIndex])
                if spec.number == LinuxABI.Syscall.readlink || spec.number == LinuxABI.Syscall.readlinkat {
                    // bufsiz is an int (readlink(2)): ≤ 0 is EINVAL.
                    let bufsiz = request.int32(lengthIndex)
                    guard bufsiz > 0 else { return .error(EINVAL) }
                    asked = Int(bufsiz)
                }
                let length = min(asked, cursor.remaining)
                let offset = try cursor.reserve(length)
                arguments[index] = cursor.address(offset)
                arguments[lengthIndex] = UInt64(length)
                outputs.append(.buffer(offset: offset, address: request.arguments[index], limit: length))
            case .string:
                let bytes = try memory.readPath(request.arguments[index])
                arguments[index] = try place(path: bytes, &cursor)
            case .outBufferOrSizeQuery(let lengthIndex):
                let asked = Int(clamping: request.arguments[lengthIndex])
                if asked == 0 {
                    arguments[index] = 0
                    break
                }
                let length = min(asked, cursor.remaining)
                let offset = try cursor.reserve(length)
                arguments[index] = cursor.address(offset)
                arguments[lengthIndex] = UInt64(length)
                outputs.append(.buffer(offset: offset, address: request.arguments[index], limit: length))
            case .outStruct(let size):
                guard request.arguments[index] != 0 else { return .error(EFAULT) }
                let offset = try cursor.reserve(size)
                arguments[index] = cursor.address(offset)
                outputs.append(.fixed(offset: offset, address: request.arguments[index], size: size))
            case .inStruct(let size):
                // Optional input structs (settimeofday's timezone): NULL stays NULL.
                guard request.arguments[index] != 0 else { break }
                let offset = try cursor.reserve(size)
                try executor.writeRegion(offset: offset, try memory.read(request.arguments[index], count: size))
                arguments[index] = cursor.address(offset)
            case .iovecOut(let countIndex):
                // readv becomes one guest read into the region, scattered locally
                // afterwards: same bytes, same file position, one guest call.
                guard let (iovecs, total) = try Self.inspectorIovecs(memory, at: request.arguments[index],
                                                                     count: Int(request.int32(countIndex))) else { return .error(EINVAL) }
                let length = min(total, cursor.remaining)
                let offset = try cursor.reserve(length)
                number = LinuxABI.Syscall.read
                arguments = [arguments[0], cursor.address(offset), UInt64(length), 0, 0, 0]
                outputs.append(.scatter(offset: offset, iovecs: iovecs, limit: length))
            }
        }

        try validate()
        let result = try guestCall(number, arguments, name: spec.name)
        countRedirected(spec)
        if result < 0 { return .error(Int32(-result)) }

        for output in outputs {
            switch output {
            case .buffer(let offset, let address, let limit):
                guard result <= Int64(limit) else {
                    throw SupervisorError.guestResultOutOfRange(call: spec.name, result: result, limit: Int64(limit))
                }
                try memory.write(address, try regionBytes(offset, Int(result)))
            case .fixed(let offset, let address, let size):
                guard result == 0 else {
                    throw SupervisorError.guestResultOutOfRange(call: spec.name, result: result, limit: 0)
                }
                try memory.write(address, try regionBytes(offset, size))
            case .scatter(let offset, let iovecs, let limit):
                guard result <= Int64(limit) else {
                    throw SupervisorError.guestResultOutOfRange(call: spec.name, result: result, limit: Int64(limit))
                }
                try memory.write(try regionBytes(offset, Int(result)), scatteringOver: iovecs)
            }
        }
        return .value(result)
    }

    /// The inspector's `count` iovecs at `address` and their total length;
    /// nil where the kernel answers EINVAL (more than UIO_MAXIOV, or a total
    /// above SSIZE_MAX, readv(2)).
    static func inspectorIovecs(_ memory: InspectorMemory, at address: UInt64,
                                count: Int) throws -> (iovecs: [(address: UInt64, length: Int)], total: Int)? {
        guard count >= 0, count <= maxIovecs else { return nil }
        let raw = try memory.read(address, count: count * KernelStructSize.iovec)
        var iovecs: [(address: UInt64, length: Int)] = []
        var total = 0
        for i in 0..<count {
            let base = loadUInt64(raw, i * KernelStructSize.iovec)
            let length = loadUInt64(raw, i * KernelStructSize.iovec + 8)
            guard length <= UInt64(Int.max), total <= Int.max - Int(length) else { return nil }
            total += Int(length)
            iovecs.append((address: base, length: Int(length)))
        }
        return (iovecs, total)
    }

    /// Exactly `count` region bytes at `offset` (an executor returning more is cut).
    func regionBytes(_ offset: Int, _ count: Int) throws -> [UInt8] {
        try executor.regionBytes(offset, count)
    }

    /// Little-endian 64-bit load from `bytes` at `offset` (the caller sized `bytes`).
    static func loadUInt64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        UInt64(littleEndianBytes: bytes.dropFirst(offset))
    }
}
