/// The kernel command line, checked and NUL-terminated.
///
/// Named `KernelCommandLine` because `CommandLine` is the Swift standard
/// library's view of swvmm's own arguments.
public struct KernelCommandLine: Sendable, Equatable {
    /// Limit for kernels without a setup header (ELF vmlinux): x86's
    /// COMMAND_LINE_SIZE is 2048 bytes including the NUL
    /// (arch/x86/include/asm/setup.h), so 2047 characters.
    public static let defaultKernelLimit = 2047

    /// The text.
    public let text: String
    /// The bytes to place in guest memory, NUL-terminated.
    public let bytes: [UInt8]

    /// Validates `text` against `kernelLimit` (the header's `cmdline_size`,
    /// which excludes the NUL) and swvmm's own area, `Layout.commandLineCapacity`.
    public init(_ text: String, kernelLimit: Int) throws {
        let utf8 = Array(text.utf8)
        if let nul = utf8.firstIndex(of: 0) { throw BootError.commandLineContainsNUL(offset: nul) }
        let limit = min(kernelLimit, Int(Layout.commandLineCapacity) - 1)
        guard utf8.count <= limit else { throw BootError.commandLineTooLong(length: utf8.count, limit: limit) }
        self.text = text
        bytes = utf8 + [0]
    }
}
