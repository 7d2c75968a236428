import Guest
import Shadow

/// One `GuestRegisters` field and the stub register (by GDB name) behind it.
struct RegisterField: Sendable {
    let name: String
    let get: @Sendable (GuestRegisters) -> UInt64
    let set: @Sendable (inout GuestRegisters, UInt64) -> Void
    var number = -1, byteSize = 0
    var blockOffset: Int?

    init(_ name: String, _ path: WritableKeyPath<GuestRegisters, UInt64> & Sendable) {
        self.name = name
        get = { $0[keyPath: path] }
        set = { $0[keyPath: path] = $1 }
    }

    init(_ name: String, _ path: WritableKeyPath<GuestRegisters, UInt16> & Sendable) {
        self.name = name
        get = { UInt64($0[keyPath: path]) }
        set = { $0[keyPath: path] = UInt16(truncatingIfNeeded: $1) }
    }

    /// Looks the register up in the stub's description (numbers from the XML).
    func resolved(in description: TargetDescription) throws -> RegisterField {
        guard let info = description.register(named: name) else { throw GDBRemoteError.missingRegister(name) }
        var copy = self
        copy.number = info.number
        copy.byteSize = min(info.byteSize, 8)
        copy.blockOffset = description.offsetInRegisterBlock(of: info.number)
        return copy
    }

    /// GDB's x86-64 register names (gdb's i386 features) for each field.
    static let table: [RegisterField] = [
        .init("rax", \.rax), .init("rbx", \.rbx), .init("rcx", \.rcx), .init("rdx", \.rdx),
        .init("rsi", \.rsi), .init("rdi", \.rdi), .init("rbp", \.rbp), .init("rsp", \.rsp),
        .init("r8", \.r8), .init("r9", \.r9), .init("r10", \.r10), .init("r11", \.r11),
        .init("r12", \.r12), .init("r13", \.r13), .init("r14", \.r14), .init("r15", \.r15),
        .init("rip", \.rip), .init("eflags", \.rflags),
        .init("cs", \.cs), .init("ss", \.ss), .init("ds", \.ds), .init("es", \.es), .init("fs", \.fs), .init("gs", \.gs),
        .init("fs_base", \.fsBase), .init("gs_base", \.gsBase), .init("k_gs_base", \.kernelGSBase),
        .init("cr0", \.cr0), .init("cr2", \.cr2), .init("cr3", \.cr3), .init("cr4", \.cr4), .init("efer", \.efer),
    ]
}
