import Glibc
import Guest
import Synchronization

/// `--trace-exits`: one line per VM exit on stderr, naming the exit, the vCPU,
/// what it carried, and the guest instruction that caused it; then the
/// histogram. A teaching aid: slow, and meant to be.
final class ExitTracer: @unchecked Sendable {
    private let memory: PhysicalMemory
    private let lock = Mutex<Disassembler?>(nil)

    init(memory: PhysicalMemory) {
        self.memory = memory
        lock.withLock { $0 = try? Disassembler() }
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
            let bytes = FailureReport.codeBytes(at: regs.rip, sregs: sregs, memory: memory)
            let instruction = lock.withLock { disassembler in
                disassembler?.disassemble(bytes, address: regs.rip, maxInstructions: 1).first
            }
            line += "  rip=0x\(hex(regs.rip))  \(instruction.map { "\($0.mnemonic) \($0.operands)" } ?? "?")"
        }
        ExitTracer.writeStandardError(line + "\n")
    }

    func finish(statistics: ExitStatistics) {
        ExitTracer.writeStandardError(statistics.histogram())
    }

    static func writeStandardError(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }
}
