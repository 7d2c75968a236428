@testable import Shadow

/// A tiny classic-BPF interpreter for the subset seccomp filters here use
/// (LD W ABS, JEQ/JGE K, JA, RET K), run over a synthetic seccomp_data.
struct BPFInterpreter {
    enum Failure: Error, Equatable { case badOpcode(UInt16), outOfBounds(Int), misaligned(UInt32), fellOffEnd }

    let program: [BPFInstruction]

    /// Runs the filter for call `number` with `arguments` on `arch`.
    func run(number: Int, arguments: [UInt64] = [], arch: UInt32 = 0xC000_003E, ip: UInt64 = 0) throws -> UInt32 {
        var data = [UInt8](repeating: 0, count: 64)
        func put32(_ v: UInt32, _ at: Int) { for i in 0..<4 { data[at + i] = UInt8((v >> (8 * UInt32(i))) & 0xff) } }
        func put64(_ v: UInt64, _ at: Int) { for i in 0..<8 { data[at + i] = UInt8((v >> (8 * UInt64(i))) & 0xff) } }
        put32(UInt32(truncatingIfNeeded: number), 0)
        put32(arch, 4)
        put64(ip, 8)
        for (i, a) in arguments.prefix(6).enumerated() { put64(a, 16 + 8 * i) }

        var a: UInt32 = 0
        var pc = 0
        var steps = 0
        while pc < program.count {
            steps += 1
            let ins = program[pc]
            switch ins.code {
            case BPFInstruction.loadWordAbsolute:
                guard ins.k % 4 == 0 else { throw Failure.misaligned(ins.k) }
                guard Int(ins.k) + 4 <= data.count else { throw Failure.outOfBounds(Int(ins.k)) }
                let k = Int(ins.k)
                a = UInt32(data[k]) | UInt32(data[k + 1]) << 8 | UInt32(data[k + 2]) << 16 | UInt32(data[k + 3]) << 24
                pc += 1
            case BPFInstruction.jumpIfEqual:
                pc += 1 + Int(a == ins.k ? ins.jt : ins.jf)
            case BPFInstruction.jumpIfGreaterOrEqual:
                pc += 1 + Int(a >= ins.k ? ins.jt : ins.jf)
            case BPFInstruction.jumpAlways:
                pc += 1 + Int(ins.k)
            case BPFInstruction.returnConstant:
                return ins.k
            default:
                throw Failure.badOpcode(ins.code)
            }
        }
        throw Failure.fellOffEnd
    }
}
