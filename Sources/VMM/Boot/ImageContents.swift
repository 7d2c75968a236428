import Guest

/// Bytes that go into guest memory: already in memory (tests, images built on
/// the fly) or a range of a file, read straight into guest RAM when loaded.
public enum ImageContents: Sendable {
    case bytes(ArraySlice<UInt8>)
    case file(ImageFile, offset: Int, count: Int)

    /// A whole file.
    public init(file: ImageFile) { self = .file(file, offset: 0, count: file.size) }

    /// How many bytes there are.
    public var count: Int {
        switch self {
        case let .bytes(bytes): return bytes.count
        case let .file(_, _, count): return count
        }
    }

    /// Copies the bytes to guest-physical `address`; from a file, with no
    /// intermediate buffer when `memory` is swvmm's own RAM.
    public func copy(into memory: PhysicalMemory, at address: UInt64, what: String) throws {
        switch self {
        case let .bytes(bytes):
            try memory.writeBytes(physical: address, bytes)
        case let .file(file, offset, count):
            try memory.write(physical: address, count: count) { buffer, done in
                try file.read(offset: offset + done, into: buffer, what: what)
            }
        }
    }

    /// All the bytes, read into memory (for tests and diagnostics, not loading).
    public func readAll(what: String = "contents") throws -> [UInt8] {
        switch self {
        case let .bytes(bytes): return Array(bytes)
        case let .file(file, offset, count): return try file.read(offset: offset, count: count, what: what)
        }
    }
}
