import Foundation
import Shadow

/// Typed helpers over a `GuestSyscallExecutor` for the tests: strings into
/// the region, results out of it.
struct GuestCalls {
    let executor: GuestSyscallExecutor
    /// Region offsets used by the helpers: a path, then a data buffer.
    static let pathOffset = 0, bufferOffset = 4096

    var bufferAddress: UInt64 { executor.regionAddress + UInt64(Self.bufferOffset) }
    var bufferSize: Int { min(16384, executor.regionSize - Self.bufferOffset) }

    func getpid() throws -> Int64 { try executor.syscall(LinuxABI.Syscall.getpid, []) }

    /// uname(2): sysname, nodename, release (struct utsname: 6 fields of 65 bytes).
    func uname() throws -> (sysname: String, nodename: String, release: String) {
        let rc = try executor.syscall(LinuxABI.Syscall.uname, [bufferAddress])
        guard rc == 0 else { throw GuestCallError.failed("uname", rc) }
        let bytes = try executor.readRegion(offset: Self.bufferOffset, count: 6 * 65)
        func field(_ i: Int) -> String {
            let slice = bytes[(i * 65) ..< (i * 65 + 65)]
            return String(decoding: slice.prefix { $0 != 0 }, as: UTF8.self)
        }
        return (field(0), field(1), field(2))
    }

    func open(_ path: String, flags: UInt64 = LinuxABI.oReadOnly) throws -> Int64 {
        try executor.writeRegion(offset: Self.pathOffset, Array(path.utf8) + [0])
        let fd = try executor.syscall(LinuxABI.Syscall.openat,
                                      [UInt64(bitPattern: LinuxABI.atFDCWD), executor.regionAddress + UInt64(Self.pathOffset), flags, 0])
        guard fd >= 0 else { throw GuestCallError.failed("openat \(path)", fd) }
        return fd
    }

    func close(_ fd: Int64) throws {
        let rc = try executor.syscall(LinuxABI.Syscall.close, [UInt64(fd)])
        guard rc == 0 else { throw GuestCallError.failed("close", rc) }
    }

    /// openat + read until EOF + close.
    func readFile(_ path: String) throws -> String {
        let fd = try open(path)
        var data: [UInt8] = []
        while data.count < 1 << 20 {
            let n = try executor.syscall(LinuxABI.Syscall.read, [UInt64(fd), bufferAddress, UInt64(bufferSize)])
            guard n >= 0 else { throw GuestCallError.failed("read", n) }
            if n == 0 { break }
            data += try executor.readRegion(offset: Self.bufferOffset, count: Int(n))
        }
        try close(fd)
        return String(decoding: data, as: UTF8.self)
    }

    /// getdents64 over a directory: the entry names.
    func listDirectory(_ path: String) throws -> [String] {
        let fd = try open(path, flags: LinuxABI.oReadOnly | LinuxABI.oDirectory)
        var names: [String] = []
        for _ in 0 ..< 1000 {
            let n = try executor.syscall(LinuxABI.Syscall.getdents64, [UInt64(fd), bufferAddress, UInt64(bufferSize)])
            guard n >= 0 else { throw GuestCallError.failed("getdents64", n) }
            if n == 0 { break }
            let bytes = try executor.readRegion(offset: Self.bufferOffset, count: Int(n))
            // struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name (include/linux/dirent.h).
            var offset = 0
            while offset + 19 < bytes.count {
                let reclen = Int(bytes[offset + 16]) | Int(bytes[offset + 17]) << 8
                guard reclen >= 20, offset + reclen <= bytes.count else { break }
                let name = bytes[(offset + 19) ..< (offset + reclen)].prefix { $0 != 0 }
                names.append(String(decoding: name, as: UTF8.self))
                offset += reclen
            }
        }
        try close(fd)
        return names
    }
}

enum GuestCallError: Error, CustomStringConvertible {
    case failed(String, Int64)
    var description: String {
        switch self { case let .failed(call, rc): return "\(call) returned \(rc)" }
    }
}
