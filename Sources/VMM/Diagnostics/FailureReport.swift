import CKVM
import Guest

/// What a vCPU looked like when the guest failed: the exit, the registers,
/// and the instructions at RIP. Gathered on the failing vCPU's own thread.
public struct FailureReport: CustomStringConvertible, Sendable {
    /// Index of the vCPU that failed.
    public let vcpu: Int
    /// The exit, explained in words.
    public let reason: String
    /// `rip`, `rsp`, general registers and control registers, formatted.
    public let registers: String
    /// Bytes at RIP (up to `codeWindow`), empty when they could not be read.
    public let instructionBytes: [UInt8]
    /// Those bytes disassembled, or why they could not be.
    public let disassembly: String
    /// The exit itself, for callers that branch on it.
    public let exitName: String
    /// True for `KVM_EXIT_INTERNAL_ERROR` with suberror `KVM_INTERNAL_ERROR_EMULATION`.
    public let isEmulationFailure: Bool

    /// How many bytes at RIP a report shows (the longest x86 instruction is 15 bytes).
    public static let codeWindow = 32

    public var description: String {
        var text = "vCPU \(vcpu): \(reason)\n\(registers)"
        text += "code at rip:\n\(disassembly)"
        return text
    }

    /// Builds a report for `exit` on `vcpu`, reading code through the guest's own page tables.
    init(exit: VMExit, vcpu: VirtualCPU, memory: PhysicalMemory) {
        self.vcpu = vcpu.id
        exitName = exit.name
        reason = FailureReport.explain(exit)
        if case let .internalError(suberror, _) = exit, UInt32(suberror) == CKVM_INTERNAL_ERROR_EMULATION {
            isEmulationFailure = true
        } else {
            isEmulationFailure = false
        }
        guard let regs = try? vcpu.registers(), let sregs = try? vcpu.specialRegisters() else {
            registers = "(registers unavailable)\n"
            instructionBytes = []
            disassembly = "(unavailable)\n"
            return
        }
        registers = FailureReport.format(regs, sregs)
            + (FailureReport.isResetState(regs, sregs) && exit.name == "SHUTDOWN" ? FailureReport.resetStateNote : "")
        let bytes = FailureReport.codeBytes(at: regs.rip, sregs: sregs, memory: memory)
        instructionBytes = bytes
        if bytes.isEmpty {
            disassembly = "  (rip 0x\(hex(regs.rip)) is not mapped to guest RAM)\n"
        } else if let disassembler = try? Disassembler() {
            disassembly = disassembler.formatted(bytes, address: regs.rip, maxInstructions: 4)
        } else {
            disassembly = "  " + bytes.map { hex(UInt64($0), width: 2) }.joined(separator: " ") + "\n"
        }
    }

    static func explain(_ exit: VMExit) -> String {
        switch exit {
        case .shutdown:
            return "triple fault (KVM_EXIT_SHUTDOWN): an exception occurred while the CPU could not deliver one"
        case let .internalError(suberror, data):
            let detail = data.isEmpty ? "" : ", data " + data.map { "0x" + hex($0) }.joined(separator: " ")
            if UInt32(suberror) == CKVM_INTERNAL_ERROR_EMULATION {
                return "KVM could not emulate an instruction (KVM_EXIT_INTERNAL_ERROR, suberror 1: emulation failure\(detail))"
            }
            return "KVM internal error (KVM_EXIT_INTERNAL_ERROR, suberror \(suberror)\(detail))"
        case let .failedEntry(reason, cpu):
            return "VM entry failed (KVM_EXIT_FAIL_ENTRY): hardware reason 0x\(hex(reason)) on host CPU \(cpu)"
        case let .exception(vector, errorCode):
            return "unhandled guest exception \(vector) (error code 0x\(hex(UInt64(errorCode))))"
        default:
            return "unexpected exit \(exit.name)"
        }
    }

    /// Code bytes at `rip`: through the guest's page tables when paging is on, else linear = physical.
    static func codeBytes(at rip: UInt64, sregs: kvm_sregs, memory: PhysicalMemory) -> [UInt8] {
        let pagingEnabled = sregs.cr0 & (1 << 31) != 0 // CR0.PG, Intel SDM Vol. 3A §2.5
        let linear = rip &+ (sregs.efer & (1 << 10) != 0 ? 0 : sregs.cs.base) // long mode ignores the CS base
        if pagingEnabled, let context = try? PagingContext(cr3: sregs.cr3, cr4: sregs.cr4, efer: sregs.efer) {
            let view = GuestView(memory: memory, context: context)
            // Read up to the window, stopping early at an unmapped page.
            for count in stride(from: codeWindow, through: 1, by: -1) {
                if let bytes = try? view.read(virtual: linear, count: count) { return bytes }
            }
            return []
        }
        return (try? memory.readBytes(physical: linear, count: codeWindow)) ?? []
    }

    /// The x86 reset vector: CS 0xF000, IP 0xFFF0 (Intel SDM Vol. 3A §10.1.4).
    static func isResetState(_ regs: kvm_regs, _ sregs: kvm_sregs) -> Bool {
        regs.rip == 0xFFF0 && sregs.cs.selector == 0xF000
    }

    /// On AMD SVM the VMCB is undefined after a shutdown intercept, so KVM
    /// resets the vCPU before reporting it (arch/x86/kvm/svm: shutdown_interception).
    static let resetStateNote = "  (these are reset values: on AMD SVM, KVM resets the vCPU after a shutdown, so the faulting state is gone)\n"

    static func format(_ regs: kvm_regs, _ sregs: kvm_sregs) -> String {
        func row(_ pairs: [(String, UInt64)]) -> String {
            "  " + pairs.map { "\($0.0.padding(to: 3))=\(hex($0.1, width: 16))" }.joined(separator: " ") + "\n"
        }
        return row([("rip", regs.rip), ("rsp", regs.rsp), ("rfl", regs.rflags)])
            + row([("rax", regs.rax), ("rbx", regs.rbx), ("rcx", regs.rcx), ("rdx", regs.rdx)])
            + row([("rsi", regs.rsi), ("rdi", regs.rdi), ("rbp", regs.rbp), ("r8", regs.r8)])
            + row([("r9", regs.r9), ("r10", regs.r10), ("r11", regs.r11), ("r12", regs.r12)])
            + row([("r13", regs.r13), ("r14", regs.r14), ("r15", regs.r15)])
            + row([("cr0", sregs.cr0), ("cr2", sregs.cr2), ("cr3", sregs.cr3), ("cr4", sregs.cr4)])
            + "  efer=\(hex(sregs.efer, width: 16)) cs=\(hex(UInt64(sregs.cs.selector), width: 4)) (cpl \(sregs.cs.dpl)) idt=\(hex(sregs.idt.base, width: 16))\n"
    }
}
