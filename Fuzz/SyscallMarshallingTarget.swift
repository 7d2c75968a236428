import Glibc
import Shadow

// The supervisor's marshalling of each redirected system call, against a
// guest that returns hostile results and fills S's region with hostile bytes.
//
// The inspector is a forked child that only sleeps: the redirector reads
// and writes its memory (process_vm_readv/writev), so whatever a bug writes
// lands there, never in this process. Pointer arguments point into its copy
// of `inspectorScratch`, whose first bytes each input sets.

private let scratchSize = 1 << 16
/// Where pointer arguments point: mapped before the fork, so the child has it at the same address.
private nonisolated(unsafe) let inspectorScratch: UnsafeMutableRawPointer = {
    guard let memory = mmap(nil, scratchSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
          memory != MAP_FAILED else {
        report("mmap failed\n")
        abort()
    }
    // Paths the redirector will follow, at fixed offsets.
    let paths = ["/proc/loadavg", "/etc/passwd", "/sys/kernel", "relative/name", "/proc/self/status"]
    memset(memory, 0, scratchSize)
    for (index, path) in paths.enumerated() {
        _ = path.withCString { strcpy(memory.advanced(by: 4096 + index * 256).assumingMemoryBound(to: CChar.self), $0) }
    }
    return memory
}()

private nonisolated(unsafe) var inspectorPid: pid_t = 0
/// The child's /proc/PID/mem, open for writing its scratch.
private nonisolated(unsafe) var inspectorMemory: Int32 = -1

/// The sleeping child, (re)started when it has gone.
private func inspector() -> pid_t {
    if inspectorPid > 0 {
        var status: Int32 = 0
        if waitpid(inspectorPid, &status, WNOHANG) == 0 { return inspectorPid }
    }
    _ = inspectorScratch
    let parent = getpid()
    let pid = fork()
    fuzzCheck(pid >= 0, "fork failed")
    if pid == 0 {
        // Only async-signal-safe calls here; leaves within a second of its parent.
        while getppid() == parent { sleep(1) }
        _exit(0)
    }
    inspectorPid = pid
    if inspectorMemory >= 0 { close(inspectorMemory) }
    inspectorMemory = open("/proc/\(pid)/mem", O_RDWR | O_CLOEXEC)
    fuzzCheck(inspectorMemory >= 0, "cannot open /proc/\(pid)/mem")
    return pid
}

/// A guest whose every call returns `result` and leaves S's region full of `fill`.
private final class HostileGuest: GuestSyscallExecutor {
    let regionAddress: UInt64 = 0x7f12_3400_0000
    let regionSize = 16384
    private var region: [UInt8]
    private let fill: [UInt8]
    private let result: Int64

    init(result: Int64, fill: [UInt8]) {
        self.result = result
        self.fill = fill.isEmpty ? [0xFF] : fill
        region = [UInt8](repeating: 0, count: regionSize)
    }

    func writeRegion(offset: Int, _ bytes: [UInt8]) throws {
        fuzzCheck(offset >= 0 && offset + bytes.count <= regionSize, "region write at \(offset)+\(bytes.count)")
        region.replaceSubrange(offset..<offset + bytes.count, with: bytes)
    }

    func readRegion(offset: Int, count: Int) throws -> [UInt8] {
        fuzzCheck(offset >= 0 && count >= 0 && offset + count <= regionSize, "region read at \(offset)+\(count)")
        return Array(region[offset..<offset + count])
    }

    func syscall(_ number: Int, _ arguments: [UInt64]) throws -> Int64 {
        for index in region.indices { region[index] = fill[index % fill.count] }
        return result
    }
}

/// Hands out local fd numbers without touching any process.
private final class CountingInstaller: GuestFdInstaller {
    func isInUse(_ local: Int32) -> Bool { false }
    func install(at local: Int32, cloexec: Bool) -> Int32 { local }
    func install(file: Int32, at local: Int32, cloexec: Bool) -> Int32 { local }
}

/// Reads the input front to back; zeros once it runs out.
private struct InputReader {
    let bytes: [UInt8]
    var position = 0
    mutating func byte() -> UInt8 {
        defer { position += 1 }
        return position < bytes.count ? bytes[position] : 0
    }
    mutating func word() -> UInt64 { (0..<8).reduce(0) { value, _ in value << 8 | UInt64(byte()) } }
}

func fuzzSyscallMarshalling(_ bytes: [UInt8]) {
    var input = InputReader(bytes: bytes)
    let specs = SyscallSpecTable.all
    let spec = specs[Int(input.byte()) % specs.count]
    let base = UInt64(UInt(bitPattern: inspectorScratch))
    var arguments: [UInt64] = []
    for _ in 0..<6 {
        let kind = input.byte(), value = input.word()
        switch kind % 4 {
        case 0: arguments.append(value % 8192)                          // a size or a flag
        case 1: arguments.append(base + value % 16384)                  // a buffer
        case 2: arguments.append(base + 4096 + (value % 5) * 256)       // one of the paths
        default: arguments.append(value)                                // anything
        }
    }
    let resultKind = input.byte(), resultValue = input.word()
    let result: Int64
    switch resultKind % 3 {
    case 0: result = Int64(resultValue % 65536)
    case 1: result = -Int64(resultValue % 4096)
    default: result = Int64(bitPattern: resultValue)
    }
    let payload = Array(bytes.dropFirst(input.position))
    let pid = inspector()
    // The inspector's memory: the input's remaining bytes first, the paths after.
    payload.prefix(4096).withUnsafeBytes { raw in
        _ = pwrite(inspectorMemory, raw.baseAddress, raw.count, off_t(Int(bitPattern: inspectorScratch)))
    }
    let redirector = SyscallRedirector(executor: HostileGuest(result: result, fill: Array(payload.prefix(256))),
                                       policy: ShadowPolicy(allowWrites: resultKind & 0x80 != 0), range: .standard)
    let handled = redirector.handle(SyscallRequest(number: spec.number, arguments: arguments, pid: pid),
                                    installer: CountingInstaller())
    if case let .error(code) = handled.reply {
        fuzzCheck(code > 0 && code < 4096, "\(spec.name) answered errno \(code)")
    }
}
