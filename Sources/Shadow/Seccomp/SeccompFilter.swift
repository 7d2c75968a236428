import CShadow

/// The reserved range of local fd numbers that stand for guest fds.
public struct GuestFdRange: Equatable, Sendable {
    /// First reserved fd number.
    public let lowerBound: Int32
    /// Number of reserved fds.
    public let count: Int32

    /// Default: 1000..<1256, above the fds an inspector normally holds and
    /// far below the 2^31 where a negative int would alias it.
    public static let standard = GuestFdRange(lowerBound: 1000, count: 256)

    public init(lowerBound: Int32, count: Int32) {
        self.lowerBound = lowerBound
        self.count = count
    }

    /// One past the last reserved fd.
    public var upperBound: Int32 { lowerBound &+ count }

    /// Whether a raw fd argument (low 32 bits, as the kernel reads an int) is reserved.
    public func contains(rawArgument: UInt64) -> Bool {
        let fd = Int32(truncatingIfNeeded: rawArgument)
        return fd >= lowerBound && fd < upperBound
    }

    /// Checks the range is usable: non-negative and below 2^31.
    public func validate() throws {
        guard lowerBound >= 3, count > 0, Int64(lowerBound) + Int64(count) <= Int64(Int32.max) else {
            throw SupervisorError.badConfiguration("guest fd range \(lowerBound)+\(count) must lie within 3..<2^31")
        }
    }
}

/// Builds the inspector's seccomp filter from the spec table.
///
/// Shape: wrong architecture or an x32 call number → kill the process;
/// calls with `.always` → USER_NOTIF; calls with fd arguments → USER_NOTIF
/// only if one fd lies in the guest range; socket(AF_NETLINK) → USER_NOTIF;
/// everything else → ALLOW. execve, sendmsg, write and exit_group are
/// allowed unless their fd is reserved, which the spawn shim relies on.
public enum SeccompFilter {
    // Offsets in `struct seccomp_data` (include/uapi/linux/seccomp.h):
    // int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6].
    /// Offset of `nr`.
    public static let offsetNumber: UInt32 = 0
    /// Offset of `arch`.
    public static let offsetArch: UInt32 = 4
    /// Offset of the low 32 bits of `args[i]` (little-endian).
    public static func offsetArgumentLow(_ i: Int) -> UInt32 { 16 + 8 * UInt32(i) }

    /// The filter for `specs` with guest fds in `range`.
    public static func build(range: GuestFdRange, specs: [SyscallSpec] = SyscallSpecTable.all) throws -> [BPFInstruction] {
        var asm = BPFAssembler()
        let notify = asm.label()

        // The kills sit next to their checks so the jumps stay short.
        let archOK = asm.label()
        let numberOK = asm.label()
        asm.load(offset: offsetArch)
        asm.jumpIfEqual(CSHADOW_AUDIT_ARCH_X86_64, then: archOK, else: nil)
        asm.ret(CSHADOW_RET_KILL_PROCESS)
        asm.place(archOK)
        asm.load(offset: offsetNumber)
        asm.jumpIfGreaterOrEqual(LinuxABI.Syscall.x32Bit, then: nil, else: numberOK)
        asm.ret(CSHADOW_RET_KILL_PROCESS)
        asm.place(numberOK)

        // Calls trapped always jump to a shared USER_NOTIF right after their
        // block, which keeps every offset under 256.
        let always = specs.filter { $0.trap == .always }
        let afterAlways = asm.label()
        for spec in always {
            asm.jumpIfEqual(UInt32(spec.number), then: notify, else: nil)
        }
        asm.jump(afterAlways)
        asm.place(notify)
        asm.ret(CSHADOW_RET_USER_NOTIF)
        asm.place(afterAlways)

        // Each conditional call: a block that reloads arguments and returns.
        for spec in specs {
            switch spec.trap {
            case .always:
                continue
            case .fdInRange(let arguments):
                let next = asm.label()
                let blockNotify = asm.label()
                asm.jumpIfEqual(UInt32(spec.number), then: nil, else: next)
                for argument in arguments {
                    let nextArgument = asm.label()
                    asm.load(offset: offsetArgumentLow(argument))
                    asm.jumpIfGreaterOrEqual(UInt32(bitPattern: range.lowerBound), then: nil, else: nextArgument)
                    asm.jumpIfGreaterOrEqual(UInt32(bitPattern: range.upperBound), then: nextArgument, else: blockNotify)
                    asm.place(nextArgument)
                }
                asm.ret(CSHADOW_RET_ALLOW)
                asm.place(blockNotify)
                asm.ret(CSHADOW_RET_USER_NOTIF)
                asm.place(next)
                asm.load(offset: offsetNumber)
            case .argumentEquals(let argument, let value):
                let next = asm.label()
                let blockNotify = asm.label()
                asm.jumpIfEqual(UInt32(spec.number), then: nil, else: next)
                asm.load(offset: offsetArgumentLow(argument))
                asm.jumpIfEqual(value, then: blockNotify, else: nil)
                asm.ret(CSHADOW_RET_ALLOW)
                asm.place(blockNotify)
                asm.ret(CSHADOW_RET_USER_NOTIF)
                asm.place(next)
                asm.load(offset: offsetNumber)
            }
        }
        asm.ret(CSHADOW_RET_ALLOW)
        return try asm.assemble()
    }

    /// A filter that notifies exactly `number` and allows everything else
    /// (for measuring the notification round trip).
    public static func trapping(number: Int) throws -> [BPFInstruction] {
        var asm = BPFAssembler()
        let kill = asm.label()
        let notify = asm.label()
        asm.load(offset: offsetArch)
        asm.jumpIfEqual(CSHADOW_AUDIT_ARCH_X86_64, then: nil, else: kill)
        asm.load(offset: offsetNumber)
        asm.jumpIfEqual(UInt32(number), then: notify, else: nil)
        asm.ret(CSHADOW_RET_ALLOW)
        asm.place(notify)
        asm.ret(CSHADOW_RET_USER_NOTIF)
        asm.place(kill)
        asm.ret(CSHADOW_RET_KILL_PROCESS)
        return try asm.assemble()
    }
}
