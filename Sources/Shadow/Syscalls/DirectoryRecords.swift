/// A getdents64 buffer: whole `struct linux_dirent64` records
/// (include/linux/dirent.h: d_ino at 0, d_off at 8, d_reclen at 16, d_type
/// at 18, d_name at 19). The guest wrote them, so every walk is bounded.
enum DirectoryRecords {
    static let offOffset = 8
    static let reclenOffset = 16
    static let nameOffset = 19
    /// The longest record: the header, a 255-byte name (NAME_MAX,
    /// include/uapi/linux/limits.h) and its NUL, 8-byte aligned; a getdents64
    /// buffer this large always takes the next record.
    static let largestRecord = (nameOffset + 255 + 1 + 7) & ~7

    /// The length of the record at `offset`, if a whole one starts there.
    private static func recordLength(at offset: Int, in bytes: [UInt8]) -> Int? {
        guard offset >= 0, offset + nameOffset < bytes.count else { return nil }
        let length = Int(bytes[offset + reclenOffset]) | Int(bytes[offset + reclenOffset + 1]) << 8
        guard length > nameOffset, length <= bytes.count - offset else { return nil }
        return length
    }

    /// The entries' names; a malformed record ends the walk.
    static func names(in bytes: [UInt8]) -> [String] {
        var names: [String] = []
        var offset = 0
        while let length = recordLength(at: offset, in: bytes) {
            let name = bytes[(offset + nameOffset) ..< (offset + length)].prefix { $0 != 0 }
            names.append(String(decoding: name, as: UTF8.self))
            offset += length
        }
        return names
    }

    /// Whether `bytes` is whole records and nothing else.
    static func isWellFormed(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while let length = recordLength(at: offset, in: bytes) { offset += length }
        return offset == bytes.count
    }

    /// How many bytes from `offset` the whole records that fit in `room` take
    /// (0: none fits, or none is left).
    static func prefix(from offset: Int, fitting room: Int, in bytes: [UInt8]) -> Int {
        var end = offset
        while let length = recordLength(at: end, in: bytes), end + length - offset <= room { end += length }
        return end - offset
    }

    /// The d_off of the last record before `offset` (0 at the start): where
    /// a directory read up to `offset` continues.
    static func position(after offset: Int, in bytes: [UInt8]) -> UInt64 {
        var start = 0, position: UInt64 = 0
        while start < offset, let length = recordLength(at: start, in: bytes) {
            position = UInt64(littleEndianBytes: bytes[(start + offOffset) ..< (start + offOffset + 8)])
            start += length
        }
        return position
    }
}
