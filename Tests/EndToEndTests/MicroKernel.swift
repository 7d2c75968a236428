import Foundation

/// A hand-assembled "kernel": an ELF64 x86-64 executable whose 64-bit code
/// writes a message to the COM1 data port (0x3f8), then resets the machine
/// through the i8042 (0xFE to port 0x64), then spins. swvmm loads it as it
/// loads a vmlinux, so it exercises the real CLI, loader, run loop and devices
/// in a few milliseconds.
struct MicroKernel {
    /// Guest-physical (and virtual) address of the code: above 1 MiB, inside swvmm's identity map.
    static let loadAddress: UInt64 = 0x20_0000
    /// File offset of the code (page-aligned).
    static let codeOffset = 0x1000

    let message: [UInt8]
    /// The code bytes.
    let code: [UInt8]
    /// Address of each `out` instruction, in execution order (one per message byte, then the reset).
    let outInstructions: [(address: UInt64, length: UInt64)]

    init(message: String) {
        self.message = Array(message.utf8)
        var code: [UInt8] = [0x66, 0xBA, 0xF8, 0x03]          // mov dx, 0x3f8
        var outs: [(UInt64, UInt64)] = []
        for byte in self.message {
            code += [0xB0, byte]                                // mov al, byte
            outs.append((Self.loadAddress + UInt64(code.count), 1))
            code += [0xEE]                                      // out dx, al
        }
        code += [0xB0, 0xFE]                                    // mov al, 0xfe (pulse reset line)
        outs.append((Self.loadAddress + UInt64(code.count), 2))
        code += [0xE6, 0x64]                                    // out 0x64, al
        code += [0xEB, 0xFE]                                    // jmp $ (never reached when the reset works)
        self.code = code
        outInstructions = outs
    }

    /// A kernel of exactly `code`, with no `out` to report.
    init(code: [UInt8]) {
        message = []
        self.code = code
        outInstructions = []
    }

    /// A kernel that triple-faults at once: `ud2` raises #UD, which the empty
    /// IDT swvmm boots with cannot deliver, nor the #DF that follows
    /// (Intel SDM Vol. 3A §6.15, "Interrupt 8: double fault"): the CPU shuts down.
    static let tripleFault = MicroKernel(code: [0x0F, 0x0B, 0xEB, 0xFE])   // ud2; jmp $

    /// Writes the ELF file as `.build/NAME` of the package tree, where the
    /// KVM host's L1 sees it too (it shares this host's root read-only), and
    /// returns its path.
    func writeInPackageTree(named name: String) throws -> URL {
        let file = Swvmm.packageRoot.appendingPathComponent(".build/\(name)")
        try Data(elf).write(to: file)
        return file
    }

    /// The ELF file: header, one PT_LOAD (R+X) program header, padding, code.
    /// Layout per the System V gABI and the x86-64 psABI (EM_X86_64 = 62).
    var elf: [UInt8] {
        var bytes: [UInt8] = []
        bytes += [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)  // ELFCLASS64, LSB, version 1
        bytes += le(UInt16(2)) + le(UInt16(62)) + le(UInt32(1))   // ET_EXEC, EM_X86_64, EV_CURRENT
        bytes += le(Self.loadAddress) + le(UInt64(64)) + le(UInt64(0))  // e_entry, e_phoff, e_shoff
        bytes += le(UInt32(0)) + le(UInt16(64)) + le(UInt16(56)) + le(UInt16(1))  // flags, ehsize, phentsize, phnum
        bytes += le(UInt16(64)) + le(UInt16(0)) + le(UInt16(0))  // shentsize, shnum, shstrndx
        bytes += le(UInt32(1)) + le(UInt32(5))                   // PT_LOAD, PF_R | PF_X
        bytes += le(UInt64(Self.codeOffset)) + le(Self.loadAddress) + le(Self.loadAddress)  // offset, vaddr, paddr
        bytes += le(UInt64(code.count)) + le(UInt64(code.count)) + le(UInt64(0x1000))   // filesz, memsz, align
        bytes += [UInt8](repeating: 0, count: Self.codeOffset - bytes.count)
        return bytes + code
    }

    /// A bare ELF header (no program headers) of the given class and machine: for "not x86-64" inputs.
    static func elfHeader(class elfClass: UInt8, machine: UInt16) -> [UInt8] {
        var bytes: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, elfClass, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
        bytes += le(UInt16(2)) + le(machine) + le(UInt32(1))
        if elfClass == 2 {
            bytes += le(UInt64(0x100_0000)) + le(UInt64(0)) + le(UInt64(0)) + le(UInt32(0))
            bytes += le(UInt16(64)) + le(UInt16(56)) + le(UInt16(0)) + le(UInt16(64)) + le(UInt16(0)) + le(UInt16(0))
        } else {
            bytes += le(UInt32(0x100_0000)) + le(UInt32(0)) + le(UInt32(0)) + le(UInt32(0))
            bytes += le(UInt16(52)) + le(UInt16(32)) + le(UInt16(0)) + le(UInt16(40)) + le(UInt16(0)) + le(UInt16(0))
        }
        return bytes + [UInt8](repeating: 0, count: 4096)
    }
}

/// Little-endian bytes of `value`.
func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
}
