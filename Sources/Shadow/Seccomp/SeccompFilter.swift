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

/// Builds the inspector's seccomp filter from the syscall class table.
///
/// Shape: wrong architecture or an x32 call number → kill the process; then
/// a binary search on the call number (a handful of comparisons for any
/// call) down to one range of numbers that share an answer: calls of class
/// `.local` → ALLOW; routed calls with fd arguments → USER_NOTIF only if one
/// fd lies in the guest range; socket(AF_NETLINK) → USER_NOTIF; every other
/// routed call, every machine and refused call, and every number the table
/// does not know → USER_NOTIF, so nothing unknown ever runs without the
/// supervisor's answer. execve, sendmsg, write and exit_group are allowed
/// unless their fd is reserved, which the spawn shim relies on.
public enum SeccompFilter {
    // Offsets in `struct seccomp_data` (include/uapi/linux/seccomp.h):
    // int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6].
    /// Offset of `nr`.
    public static let offsetNumber: UInt32 = 0
    /// Offset of `arch`.
    public static let offsetArch: UInt32 = 4
    /// Offset of the low 32 bits of `args[i]` (little-endian).
    public static func offsetArgumentLow(_ i: Int) -> UInt32 { 16 + 8 * UInt32(i) }

    /// What the filter answers for one range of call numbers.
    enum Answer: Equatable {
        case allow
        case notify
        /// Decided by the call's arguments (one number per range).
        case rule(TrapRule)
    }

    /// A run of consecutive call numbers with one answer.
    struct NumberRange: Equatable {
        var lower: UInt32
        var upper: UInt32
        var answer: Answer
    }

    /// The answer ranges for 0..<x32Bit, in order.
    static func ranges(specs: [SyscallSpec], classOf: (Int) -> SyscallClass, highest: Int) -> [NumberRange] {
        var byNumber: [Int: SyscallSpec] = [:]
        for spec in specs { byNumber[spec.number] = spec }
        var result: [NumberRange] = []
        func append(_ number: UInt32, _ answer: Answer) {
            if case .rule = answer {
                result.append(NumberRange(lower: number, upper: number, answer: answer))
            } else if let last = result.last, last.answer == answer, last.upper &+ 1 == number {
                result[result.count - 1].upper = number
            } else {
                result.append(NumberRange(lower: number, upper: number, answer: answer))
            }
        }
        for number in 0...highest {
            var answer = Answer.notify
            if case .local = classOf(number) {
                answer = .allow
            } else if let spec = byNumber[number], spec.trap != .always {
                answer = .rule(spec.trap)
            }
            append(UInt32(number), answer)
        }
        // Numbers above the table: unknown, answered by the supervisor.
        if let last = result.last, last.answer == .notify {
            result[result.count - 1].upper = LinuxABI.Syscall.x32Bit - 1
        } else {
            result.append(NumberRange(lower: UInt32(highest + 1), upper: LinuxABI.Syscall.x32Bit - 1, answer: .notify))
        }
        return result
    }

    /// The filter for `specs` with guest fds in `range`.
    public static func build(range: GuestFdRange, specs: [SyscallSpec] = SyscallSpecTable.all,
                             classOf: (Int) -> SyscallClass = SyscallClassTable.callClass,
                             highest: Int = SyscallClassTable.highestNumber) throws -> [BPFInstruction] {
        var asm = BPFAssembler()
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
        let all = ranges(specs: specs, classOf: classOf, highest: highest)
        emitSearch(all[...], range: range, into: &asm)
        return try asm.assemble()
    }

    /// A binary search over `ranges` (A holds the call number); each
    /// comparison jumps over its lower half with an unconditional jump, so no
    /// conditional offset ever exceeds one instruction.
    private static func emitSearch(_ ranges: ArraySlice<NumberRange>, range: GuestFdRange, into asm: inout BPFAssembler) {
        guard ranges.count > 1 else {
            if let only = ranges.first { emitAnswer(only.answer, range: range, into: &asm) }
            return
        }
        let middle = ranges.startIndex + ranges.count / 2
        let lower = asm.label(), upper = asm.label()
        asm.jumpIfGreaterOrEqual(ranges[middle].lower, then: nil, else: lower)
        asm.jump(upper)
        asm.place(lower)
        emitSearch(ranges[ranges.startIndex..<middle], range: range, into: &asm)
        asm.place(upper)
        emitSearch(ranges[middle...], range: range, into: &asm)
    }

    private static func emitAnswer(_ answer: Answer, range: GuestFdRange, into asm: inout BPFAssembler) {
        switch answer {
        case .allow:
            asm.ret(CSHADOW_RET_ALLOW)
        case .notify, .rule(.always):
            asm.ret(CSHADOW_RET_USER_NOTIF)
        case .rule(.fdInRange(let arguments)):
            let notify = asm.label()
            emitFdChecks(arguments, range: range, notify: notify, into: &asm)
            asm.ret(CSHADOW_RET_ALLOW)
            asm.place(notify)
            asm.ret(CSHADOW_RET_USER_NOTIF)
        case .rule(.fdInRangeOrArgumentWithin(let fds, let argument, let lower, let upper)):
            let notify = asm.label(), allow = asm.label()
            emitFdChecks(fds, range: range, notify: notify, into: &asm)
            asm.load(offset: offsetArgumentLow(argument))
            asm.jumpIfGreaterOrEqual(lower, then: nil, else: allow)
            if upper == .max { asm.jump(notify) } else { asm.jumpIfGreaterOrEqual(upper + 1, then: allow, else: notify) }
            asm.place(allow)
            asm.ret(CSHADOW_RET_ALLOW)
            asm.place(notify)
            asm.ret(CSHADOW_RET_USER_NOTIF)
        case .rule(.argumentEquals(let argument, let value)):
            let notify = asm.label()
            asm.load(offset: offsetArgumentLow(argument))
            asm.jumpIfEqual(value, then: notify, else: nil)
            asm.ret(CSHADOW_RET_ALLOW)
            asm.place(notify)
            asm.ret(CSHADOW_RET_USER_NOTIF)
        }
    }

    /// Jumps to `notify` if one of the fd `arguments` lies in `range`; falls through otherwise.
    private static func emitFdChecks(_ arguments: [Int], range: GuestFdRange, notify: BPFAssembler.Label,
                                     into asm: inout BPFAssembler) {
        for argument in arguments {
            let nextArgument = asm.label()
            asm.load(offset: offsetArgumentLow(argument))
            asm.jumpIfGreaterOrEqual(UInt32(bitPattern: range.lowerBound), then: nil, else: nextArgument)
            asm.jumpIfGreaterOrEqual(UInt32(bitPattern: range.upperBound), then: nextArgument, else: notify)
            asm.place(nextArgument)
        }
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
