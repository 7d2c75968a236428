/// Just enough of an x86-64 assembler for the position-independent code
/// swvmm places in a guest process (`ForkCode`): each method appends one
/// instruction, encoded as in the Intel SDM Vol. 2 opcode tables; jumps to
/// labels are 32-bit relative and resolved by `assembled()`. Addresses are
/// offsets in the region the code will be placed in, starting at `origin`.
struct X86Assembler {
    /// The 32-bit registers the code uses (their ModRM register numbers, SDM Vol. 2A table 2-2).
    enum Register: UInt8 {
        case eax = 0, ecx = 1, edx = 2, ebx = 3, esp = 4, ebp = 5, esi = 6, edi = 7
        case r8d = 8, r10d = 10
        var number: UInt8 { rawValue & 7 }
        var extended: Bool { rawValue >= 8 }
    }

    /// 64-bit destinations of `leaRegion`.
    enum Register64: UInt8 { case rdx = 2, rsp = 4, rsi = 6, rdi = 7 }

    /// Conditions of `jump(_:to:)` (Jcc rel32: 0F 80+cc).
    enum Condition: UInt8 { case zero = 0x4, sign = 0x8 }

    private var code: [UInt8] = []
    private var labels: [String: Int] = [:]
    /// Unresolved rel32 jumps: where their displacement sits, and the target label.
    private var fixups: [(at: Int, label: String)] = []
    let origin: Int

    init(origin: Int) { self.origin = origin }

    /// The region offset of the next instruction.
    var offset: Int { origin + code.count }

    mutating func label(_ name: String) { labels[name] = offset }

    /// mov r32, imm32 (B8+r id; REX.B for r8d-r15d). Zero-extends into the 64-bit register.
    mutating func movImmediate(_ register: Register, _ value: UInt32) {
        if register.extended { code.append(0x41) }
        code.append(0xB8 + register.number)
        code += littleEndian(value)
    }

    /// xor r32, r32 (31 /r): the register and its 64-bit whole become 0.
    mutating func zero(_ register: Register) {
        if register.extended { code.append(0x45) }
        code += [0x31, 0xC0 | register.number << 3 | register.number]
    }

    /// syscall (0F 05).
    mutating func syscall() { code += [0x0F, 0x05] }

    /// ud2 (0F 0B): never reached; a stray path faults instead of running on.
    mutating func undefined() { code += [0x0F, 0x0B] }

    /// test rax, rax (REX.W 85 /r).
    mutating func testRAX() { code += [0x48, 0x85, 0xC0] }

    /// cmp rax, imm8 sign-extended (REX.W 83 /7 ib).
    mutating func compareRAX(_ value: Int8) { code += [0x48, 0x83, 0xF8, UInt8(bitPattern: value)] }

    /// mov rdi, rax (REX.W 89 /r).
    mutating func movRDIFromRAX() { code += [0x48, 0x89, 0xC7] }

    /// mov rbx, rax (REX.W 89 /r).
    mutating func movRBXFromRAX() { code += [0x48, 0x89, 0xC3] }

    /// lea r64, [rip + disp32] (REX.W 8D /r, ModRM mod 00 r/m 101) to region offset `target`.
    mutating func leaRegion(_ register: Register64, _ target: Int) {
        code += [0x48, 0x8D, 0x05 | register.rawValue << 3]
        code += littleEndian(UInt32(bitPattern: Int32(target - (offset + 4))))
    }

    /// jmp rel32 (E9 cd) to region offset `target`.
    mutating func jumpRegion(_ target: Int) {
        code.append(0xE9)
        code += littleEndian(UInt32(bitPattern: Int32(target - (offset + 4))))
    }

    /// Jcc rel32 to a label (defined before or after).
    mutating func jump(_ condition: Condition, to label: String) {
        code += [0x0F, 0x80 | condition.rawValue]
        fixups.append((code.count, label))
        code += [0, 0, 0, 0]
    }

    /// The code with every jump resolved. A jump to a label never defined is
    /// a bug in the code's author, caught by the tests: it jumps to itself.
    func assembled() -> [UInt8] {
        var result = code
        for (at, label) in fixups {
            let target = labels[label].map { $0 - origin } ?? (at - 2)
            let displacement = UInt32(bitPattern: Int32(target - (at + 4)))
            result.replaceSubrange(at ..< at + 4, with: littleEndian(displacement))
        }
        return result
    }

    private func littleEndian(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
}
