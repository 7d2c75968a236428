import CKVM
import Glibc
import Guest
import Synchronization

/// `--trace-exits`: one line per VM exit on stderr, naming the exit, the vCPU,
/// what it carried, and the guest instruction that caused it; then the
/// histogram. A teaching aid: slow, and meant to be.
final class ExitTracer: @unchecked Sendable {
    private let memory: PhysicalMemory
    /// Capstone handles are not thread-safe: vCPU threads take turns.
    private let disassemblerTurn = Mutex(())
    private let disassembler: Disassembler?
    private let output = ConsoleOutput(fd: STDERR_FILENO)

    init(memory: PhysicalMemory) {
        self.memory = memory
        disassembler = try? Disassembler()
    }

    func trace(_ exit: VMExit, vcpu: VirtualCPU) {
        var line = "[vcpu\(vcpu.id)] \(exit.name.padding(to: 14))"
        switch exit {
        case let .portIO(io):
            let value = io.direction == .write ? " value=" + io.data.prefix(io.size).reversed().map { hex(UInt64($0), width: 2) }.joined() : ""
            line += " port=0x\(hex(UInt64(io.port), width: 4)) size=\(io.size)\(io.count > 1 ? " count=\(io.count)" : "")\(value)"
        case let .mmio(mmio):
            line += " address=0x\(hex(mmio.address)) length=\(mmio.data.count)"
        default:
            break
        }
        if let regs = try? vcpu.registers(), let sregs = try? vcpu.specialRegisters() {
            let instruction = disassemblerTurn.withLock { _ in
                disassembler.flatMap { ExitTracer.cause(of: exit, rip: regs.rip, sregs: sregs, memory: memory, disassembler: $0) }
            }
            let address = instruction?.address ?? regs.rip
            line += "  rip=0x\(hex(address))  \(instruction.map { "\($0.mnemonic) \($0.operands)" } ?? "?")"
        }
        output.write(line + "\n")
    }

    /// The instruction that caused `exit`. For port I/O, VT-x/AMD-V report rip
    /// at the `in`/`out` (KVM completes it on the next entry), but a KVM that
    /// emulates the guest (shared/PLATFORM.md) has already moved rip past it;
    /// then the `in`/`out` ending exactly at rip is the cause.
    static func cause(of exit: VMExit, rip: UInt64, sregs: kvm_sregs, memory: PhysicalMemory,
                      disassembler: Disassembler) -> Instruction? {
        let maximumPortInstruction: UInt64 = 3 // e.g. 66 E7 ib: operand-size prefix, opcode, port
        let start = rip &- maximumPortInstruction
        let bytes = FailureReport.codeBytes(at: start, sregs: sregs, memory: memory)
        let atRIP = bytes.count > Int(maximumPortInstruction)
            ? disassembler.disassemble(Array(bytes.dropFirst(Int(maximumPortInstruction))), address: rip, maxInstructions: 1).first
            : nil
        guard case .portIO = exit, !(atRIP.map(isPortInstruction) ?? false) else { return atRIP }
        for length in 1...maximumPortInstruction where bytes.count >= Int(maximumPortInstruction) {
            let candidate = Array(bytes[Int(maximumPortInstruction - length)..<Int(maximumPortInstruction)])
            if let instruction = disassembler.disassemble(candidate, address: rip - length, maxInstructions: 1).first,
               instruction.size == Int(length), isPortInstruction(instruction) {
                return instruction
            }
        }
        return atRIP
    }

    static func isPortInstruction(_ instruction: Instruction) -> Bool {
        ["in", "out", "insb", "insw", "insd", "outsb", "outsw", "outsd"].contains(instruction.mnemonic)
    }

    func finish(statistics: ExitStatistics) {
        output.write(statistics.histogram())
    }
}
