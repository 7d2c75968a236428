/// One register as a GDB target description declares it.
public struct RegisterInfo: Equatable {
    /// GDB's name for it (`rax`, `eflags`, `fs_base`, `k_gs_base`, `cr3`...).
    public let name: String
    /// Its number in `p`/`P` packets and its position in the `g` block.
    public let number: Int
    public let bitSize: Int
    public var byteSize: Int { (bitSize + 7) / 8 }
}

/// The registers a stub describes in `target.xml` and the files it includes
/// ("Target Description Format"). Numbers come from the XML: a `regnum`
/// attribute sets one, a register without it takes the previous number plus one
/// (the first one 0), in document order with includes expanded in place.
public struct TargetDescription: Equatable {
    /// Sorted by number.
    public let registers: [RegisterInfo]

    /// Limits on what a peer may make us parse.
    static let maxIncludeDepth = 4
    static let maxDocuments = 16
    static let maxRegisters = 4096
    static let maxBitSize = 4096
    static let maxRegisterNumber = 65535

    public init(registers: [RegisterInfo]) {
        self.registers = registers.sorted { $0.number < $1.number }
    }

    /// Loads `root` and its `xi:include`s through `fetch` (which returns one
    /// annex's text, e.g. via `qXfer:features:read`).
    public static func load(root: String = "target.xml", fetch: (String) throws -> String) throws -> TargetDescription {
        var state = LoadState()
        try state.process(annex: root, depth: 0, fetch: fetch)
        guard !state.registers.isEmpty else { throw GDBRemoteError.badTargetDescription("no <reg> elements") }
        return TargetDescription(registers: state.registers)
    }

    /// The register called `name`, if described.
    public func register(named name: String) -> RegisterInfo? {
        registers.first { $0.name == name }
    }

    /// Byte offset of register `number` in a `g` reply: the registers are laid
    /// out in number order, so it is the sum of the sizes of lower numbers.
    /// Nil if the numbering has a gap below it (then `g` cannot be trusted).
    public func offsetInRegisterBlock(of number: Int) -> Int? {
        var offset = 0
        var expected = 0
        for info in registers {
            guard info.number == expected else { return nil }
            if info.number == number { return offset }
            offset += info.byteSize
            expected += 1
        }
        return nil
    }

    private struct LoadState {
        var registers: [RegisterInfo] = []
        var next = 0
        var documents = 0
        var names: Set<String> = []
        var numbers: Set<Int> = []

        mutating func process(annex: String, depth: Int, fetch: (String) throws -> String) throws {
            guard depth <= TargetDescription.maxIncludeDepth else {
                throw GDBRemoteError.badTargetDescription("includes nested deeper than \(TargetDescription.maxIncludeDepth) at '\(annex)'")
            }
            documents += 1
            guard documents <= TargetDescription.maxDocuments else {
                throw GDBRemoteError.badTargetDescription("more than \(TargetDescription.maxDocuments) documents")
            }
            let tags = try XMLTagScanner.tags(in: try fetch(annex))
            for tag in tags {
                switch (tag.name, tag.isClosing) {
                case ("xi:include", false):
                    guard let href = tag.attributes["href"], TargetDescription.isSafeAnnex(href) else {
                        throw GDBRemoteError.badTargetDescription("bad xi:include href in '\(annex)'")
                    }
                    try process(annex: href, depth: depth + 1, fetch: fetch)
                case ("reg", false):
                    try addRegister(tag.attributes, annex: annex)
                default: break
                }
            }
        }

        mutating func addRegister(_ attributes: [String: String], annex: String) throws {
            guard let name = attributes["name"], !name.isEmpty, name.utf8.count <= 64 else {
                throw GDBRemoteError.badTargetDescription("<reg> without a usable name in '\(annex)'")
            }
            guard let bitsText = attributes["bitsize"], let bits = Int(bitsText), bits > 0, bits <= TargetDescription.maxBitSize else {
                throw GDBRemoteError.badTargetDescription("register '\(name)' has no usable bitsize")
            }
            var number = next
            if let text = attributes["regnum"] {
                guard let value = Int(text), value >= 0, value <= TargetDescription.maxRegisterNumber else {
                    throw GDBRemoteError.badTargetDescription("register '\(name)' has a bad regnum '\(text)'")
                }
                number = value
            }
            guard number <= TargetDescription.maxRegisterNumber else {
                throw GDBRemoteError.badTargetDescription("register numbers exceed \(TargetDescription.maxRegisterNumber)")
            }
            guard registers.count < TargetDescription.maxRegisters else {
                throw GDBRemoteError.badTargetDescription("more than \(TargetDescription.maxRegisters) registers")
            }
            guard names.insert(name).inserted, numbers.insert(number).inserted else {
                throw GDBRemoteError.badTargetDescription("register '\(name)' (number \(number)) declared twice")
            }
            registers.append(RegisterInfo(name: name, number: number, bitSize: bits))
            next = number + 1
        }
    }

    /// An include target must be a plain file name that fits in a qXfer packet.
    static func isSafeAnnex(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128 && name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x5F || c == 0x2E
        }
    }
}
