import CCapstone

/// One decoded x86-64 instruction.
public struct Instruction: Equatable, Sendable, CustomStringConvertible {
    /// Virtual address of its first byte.
    public let address: UInt64
    /// Length in bytes (1...15).
    public let size: Int
    /// Mnemonic in Intel syntax, e.g. "mov".
    public let mnemonic: String
    /// Operands in Intel syntax, e.g. "eax, 0x50f"; empty when none.
    public let operands: String
    /// The instruction's bytes.
    public let bytes: [UInt8]
    /// Capstone's instruction id (an `x86_insn` value).
    public let id: UInt32

    /// True for `syscall` (0F 05).
    public var isSyscall: Bool { id == Disassembler.syscallID }

    public var description: String {
        operands.isEmpty ? mnemonic : "\(mnemonic) \(operands)"
    }
}

/// Why the disassembler could not be created.
public enum DisassemblerError: Error, Equatable, CustomStringConvertible {
    /// `cs_open` failed with capstone error `code`.
    case openFailed(code: UInt32, message: String)
    /// `library` (capstone) could not be loaded with dlopen(3) or lacks a
    /// function; `reason` is dlerror(3)'s message.
    case libraryUnavailable(library: String, reason: String)

    public var description: String {
        switch self {
        case let .openFailed(code, message):
            return "capstone cs_open(x86, 64-bit) failed: \(message) (error \(code))"
        case let .libraryUnavailable(library, reason):
            return "capstone (libcapstone4) is not installed: cannot load \(library): \(reason)"
        }
    }
}

/// An x86-64 disassembler (capstone, Intel syntax). Owns its capstone handle
/// and closes it on deinit. Not safe for concurrent use: capstone handles are
/// not thread-safe, so give each thread its own instance.
public final class Disassembler {
    private var handle: csh = 0
    private let capstone: CapstoneLibrary

    /// Capstone's id for `syscall`, as the plain integer `cs_insn.id` holds.
    static let syscallID: UInt32 = X86_INS_SYSCALL.rawValue

    /// Opens capstone for 64-bit x86, loading the library on first use.
    public init() throws {
        capstone = try CapstoneLibrary.shared.get()
        let status = capstone.open(CS_ARCH_X86, CS_MODE_64, &handle)
        guard status == CS_ERR_OK else {
            let message = capstone.strerror(status).map { String(cString: $0) } ?? "unknown error"
            throw DisassemblerError.openFailed(code: status.rawValue, message: message)
        }
    }

    deinit {
        _ = capstone.close(&handle)
    }

    /// Decodes up to `maxInstructions` instructions of `bytes`, the first at
    /// `address`. Stops early at the first byte sequence that is not a valid
    /// instruction (or a truncated one at the end).
    public func disassemble(_ bytes: [UInt8], address: UInt64, maxInstructions: Int) -> [Instruction] {
        guard maxInstructions > 0, !bytes.isEmpty else { return [] }
        var insns: UnsafeMutablePointer<cs_insn>?
        let count = bytes.withUnsafeBufferPointer { buffer in
            capstone.disasm(handle, buffer.baseAddress, buffer.count, address, maxInstructions, &insns)
        }
        guard count > 0, let insns else { return [] }
        defer { capstone.free(insns, count) }
        return (0 ..< count).map { Instruction(insns[$0]) }
    }

    /// A human-readable listing for diagnostics (e.g. the bytes at RIP after
    /// a failure): one line per instruction with address, bytes and text.
    /// Bytes that do not decode are listed as such instead of being dropped;
    /// the line at `highlight` (if any) is marked with "=>".
    public func formatted(_ bytes: [UInt8], address: UInt64, maxInstructions: Int = 16,
                          highlight: UInt64? = nil) -> String {
        let instructions = disassemble(bytes, address: address, maxInstructions: maxInstructions)
        var lines: [String] = []
        for instruction in instructions {
            let marker = instruction.address == highlight ? "=> " : "   "
            let hexBytes = instruction.bytes.map { hex($0, width: 2) }.joined(separator: " ")
            lines.append(marker + instruction.address.guestHex + ": "
                         + hexBytes.padding(toLength: 3 * 10) + " " + instruction.description)
        }
        let consumed = instructions.reduce(0) { $0 + $1.size }
        if instructions.count < maxInstructions, consumed < bytes.count {
            let rest = bytes[consumed...].prefix(16).map { hex($0, width: 2) }.joined(separator: " ")
            let more = bytes.count - consumed > 16 ? " ..." : ""
            lines.append("   " + (address &+ UInt64(consumed)).guestHex + ": " + rest + more + "  (does not decode)")
        }
        return lines.joined(separator: "\n")
    }

    /// Linear sweep over `bytes` from `address`: calls `visit(id, address,
    /// size)` for each instruction in order. An undecodable byte is skipped
    /// and decoding resumes at the next byte (as capstone's SKIPDATA would),
    /// so garbage resynchronises instead of ending the sweep. Returning false
    /// from `visit` stops early.
    func sweep(_ bytes: [UInt8], address: UInt64, visit: (UInt32, UInt64, Int) -> Bool) {
        guard !bytes.isEmpty, let insn = capstone.malloc(handle) else { return }
        defer { capstone.free(insn, 1) }
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            var code: UnsafePointer<UInt8>? = base
            var remaining = buffer.count
            var pc = address
            while remaining > 0, let current = code {
                if capstone.disasmIter(handle, &code, &remaining, &pc, insn) {
                    if !visit(insn.pointee.id, insn.pointee.address, Int(insn.pointee.size)) { return }
                } else {
                    // Not an instruction here: step one byte and resynchronise.
                    code = current + 1
                    remaining -= 1
                    pc &+= 1
                }
            }
        }
    }
}

private extension Instruction {
    init(_ insn: cs_insn) {
        var copy = insn
        let size = Int(copy.size)
        self.init(address: copy.address,
                  size: size,
                  mnemonic: withUnsafeBytes(of: &copy.mnemonic) { Self.string(fromNulTerminated: $0) },
                  operands: withUnsafeBytes(of: &copy.op_str) { Self.string(fromNulTerminated: $0) },
                  bytes: withUnsafeBytes(of: &copy.bytes) { Array($0.prefix(size)) },
                  id: copy.id)
    }

    /// Decodes a fixed-size C char array up to its first NUL (or its end).
    static func string(fromNulTerminated raw: UnsafeRawBufferPointer) -> String {
        let end = raw.firstIndex(of: 0) ?? raw.count
        return String(decoding: raw[..<end], as: UTF8.self)
    }
}

private extension String {
    /// Pads with spaces on the right to at least `length` characters.
    func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}
