import Guest

/// Bytes that go into guest memory: a range of a kernel or initrd file, read
/// straight into guest RAM when loaded (swvmm never holds a whole image).
public struct ImageContents: Sendable {
    /// The file the bytes are in.
    public let file: ImageFile
    /// Where they start in the file.
    public let offset: Int
    /// How many bytes there are.
    public let count: Int

    /// `count` bytes of `file` from `offset`.
    public init(file: ImageFile, offset: Int, count: Int) {
        self.file = file
        self.offset = offset
        self.count = count
    }

    /// A whole file.
    public init(file: ImageFile) { self.init(file: file, offset: 0, count: file.size) }

    /// The initrd at `path`, whole; an empty file is an error rather than a
    /// boot without the initrd the user asked for.
    public static func initrd(path: String) throws -> ImageContents {
        let file = try ImageFile(path: path)
        guard file.size > 0 else { throw BootError.emptyInitrd(path: path) }
        return ImageContents(file: file)
    }

    /// Copies the bytes to guest-physical `address`, with no intermediate
    /// buffer when `memory` is swvmm's own RAM.
    public func copy(into memory: PhysicalMemory, at address: UInt64, what: String) throws {
        try memory.write(physical: address, count: count) { buffer, done in
            try file.read(offset: offset + done, into: buffer, what: what)
        }
    }

    /// All the bytes, read into memory (for tests and diagnostics, not loading).
    public func readAll(what: String = "contents") throws -> [UInt8] {
        try file.read(offset: offset, count: count, what: what)
    }
}
