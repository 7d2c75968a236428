import CShadow

/// One classic-BPF instruction (`struct sock_filter`, linux/filter.h).
public struct BPFInstruction: Equatable, Sendable {
    public var code: UInt16
    public var jt: UInt8
    public var jf: UInt8
    public var k: UInt32

    public init(code: UInt16, jt: UInt8 = 0, jf: UInt8 = 0, k: UInt32) {
        self.code = code
        self.jt = jt
        self.jf = jf
        self.k = k
    }

    // Opcodes from include/uapi/linux/bpf_common.h.
    /// BPF_LD | BPF_W | BPF_ABS: A = 32-bit word at offset k of seccomp_data.
    public static let loadWordAbsolute: UInt16 = 0x00 | 0x00 | 0x20
    /// BPF_JMP | BPF_JEQ | BPF_K
    public static let jumpIfEqual: UInt16 = 0x05 | 0x10 | 0x00
    /// BPF_JMP | BPF_JGE | BPF_K (unsigned)
    public static let jumpIfGreaterOrEqual: UInt16 = 0x05 | 0x30 | 0x00
    /// BPF_JMP | BPF_JA (k = unconditional forward offset)
    public static let jumpAlways: UInt16 = 0x05 | 0x00
    /// BPF_RET | BPF_K
    public static let returnConstant: UInt16 = 0x06 | 0x00

    var cValue: sock_filter { sock_filter(code: code, jt: jt, jf: jf, k: k) }
}

/// Errors building a BPF program.
public enum BPFError: Error, Equatable, CustomStringConvertible {
    /// A conditional jump would need more than 255 instructions of offset.
    case jumpTooFar(from: Int, to: Int)
    /// A jump target label was never placed, or lies behind the jump.
    case badLabel(Int)
    /// seccomp accepts at most BPF_MAXINSNS (4096, linux/bpf_common.h) instructions.
    case tooLong(Int)

    public var description: String {
        switch self {
        case .jumpTooFar(let from, let to): return "BPF jump from \(from) to \(to) exceeds 255 instructions"
        case .badLabel(let l): return "BPF label \(l) is not placed after its jump"
        case .tooLong(let n): return "BPF program of \(n) instructions exceeds BPF_MAXINSNS (4096)"
        }
    }
}

/// A tiny forward-only assembler: classic BPF jumps only go forward, so
/// labels are resolved once all instructions are placed.
public struct BPFAssembler {
    /// An opaque jump target.
    public struct Label: Hashable { let id: Int }

    private enum Item {
        case plain(BPFInstruction)
        case conditional(code: UInt16, k: UInt32, ifTrue: Label?, ifFalse: Label?)
        case always(Label)
    }

    private var items: [Item] = []
    private var placed: [Label: Int] = [:]
    private var nextLabel = 0

    /// Maximum program length accepted by seccomp (BPF_MAXINSNS, linux/bpf_common.h).
    public static let maximumLength = 4096

    public init() {}

    /// A new, unplaced label.
    public mutating func label() -> Label {
        nextLabel += 1
        return Label(id: nextLabel)
    }

    /// Places `label` at the next instruction.
    public mutating func place(_ label: Label) { placed[label] = items.count }

    /// A = 32-bit word at `offset` in `struct seccomp_data`.
    public mutating func load(offset: UInt32) {
        items.append(.plain(BPFInstruction(code: BPFInstruction.loadWordAbsolute, k: offset)))
    }

    /// Returns `value` from the filter.
    public mutating func ret(_ value: UInt32) {
        items.append(.plain(BPFInstruction(code: BPFInstruction.returnConstant, k: value)))
    }

    /// if A == k goto ifTrue else ifFalse (nil: the next instruction).
    public mutating func jumpIfEqual(_ k: UInt32, then ifTrue: Label?, else ifFalse: Label?) {
        items.append(.conditional(code: BPFInstruction.jumpIfEqual, k: k, ifTrue: ifTrue, ifFalse: ifFalse))
    }

    /// if A >= k (unsigned) goto ifTrue else ifFalse (nil: the next instruction).
    public mutating func jumpIfGreaterOrEqual(_ k: UInt32, then ifTrue: Label?, else ifFalse: Label?) {
        items.append(.conditional(code: BPFInstruction.jumpIfGreaterOrEqual, k: k, ifTrue: ifTrue, ifFalse: ifFalse))
    }

    /// goto label.
    public mutating func jump(_ label: Label) { items.append(.always(label)) }

    /// The resolved program.
    public func assemble() throws -> [BPFInstruction] {
        guard items.count <= Self.maximumLength else { throw BPFError.tooLong(items.count) }
        func offset(_ label: Label?, from index: Int, limit: Int) throws -> Int {
            guard let label else { return 0 }
            guard let target = placed[label], target > index else { throw BPFError.badLabel(label.id) }
            let distance = target - index - 1
            guard distance <= limit else { throw BPFError.jumpTooFar(from: index, to: target) }
            return distance
        }
        var program: [BPFInstruction] = []
        program.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            switch item {
            case .plain(let instruction):
                program.append(instruction)
            case .conditional(let code, let k, let ifTrue, let ifFalse):
                let jt = try offset(ifTrue, from: index, limit: Int(UInt8.max))
                let jf = try offset(ifFalse, from: index, limit: Int(UInt8.max))
                program.append(BPFInstruction(code: code, jt: UInt8(jt), jf: UInt8(jf), k: k))
            case .always(let label):
                let k = try offset(label, from: index, limit: Int(Int32.max))
                program.append(BPFInstruction(code: BPFInstruction.jumpAlways, k: UInt32(k)))
            }
        }
        return program
    }
}
