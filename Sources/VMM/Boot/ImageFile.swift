import Glibc
import Guest

/// A kernel or initrd file, open for positioned reads.
///
/// Images are read piecewise (headers into small buffers, payloads straight
/// into guest RAM) so swvmm never holds a whole image in its own memory: a
/// vmlinux is 10+ MiB and an initrd can be hundreds. Owns the descriptor and
/// closes it on deinit. Only `pread(2)` is used, so sharing it is safe.
public final class ImageFile: @unchecked Sendable {
    public let path: String
    /// Size in bytes when opened (`st_size`); reads past it fail as truncated.
    public let size: Int
    private let fd: Int32

    /// Opens `path` read-only; refuses anything but a regular file.
    ///
    /// Opened with O_NONBLOCK so a FIFO cannot block here waiting for a
    /// writer, then checked with fstat (the object opened, not the name, so
    /// a swap between a check and the open cannot slip a FIFO through).
    /// pread on a regular file ignores O_NONBLOCK.
    public init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw BootError.fileUnreadable(path: path, errno: errno) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let code = errno
            close(fd)
            throw BootError.fileUnreadable(path: path, errno: code)
        }
        let type = status.st_mode & S_IFMT
        guard type == S_IFREG else {
            close(fd)
            if type == S_IFDIR { throw BootError.fileUnreadable(path: path, errno: EISDIR) }
            throw BootError.notARegularFile(path: path, kind: Self.fileTypeName(type))
        }
        self.path = path
        self.fd = fd
        size = Int(status.st_size)
    }

    /// What `st_mode & S_IFMT` is, for messages (inode(7)).
    static func fileTypeName(_ type: mode_t) -> String {
        switch type {
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        case S_IFDIR: return "a directory"
        default: return "not a regular file (mode 0o\(String(type, radix: 8)))"
        }
    }

    deinit { close(fd) }

    /// The file read as ELF through libelf (mapped lazily, not read whole).
    /// The image must not outlive this file, whose descriptor it uses.
    func elfImage() throws -> ELFImage { try ELFImage(fileDescriptor: fd, size: size) }

    /// `count` bytes at `offset` (`what` names them in a truncation error).
    public func read(offset: Int, count: Int, what: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(offset: offset, into: $0, what: what) }
        return bytes
    }

    /// Fills `buffer` from `offset`, retrying on EINTR and short reads. A file
    /// that ends early (it shrank after `init`) is `BootError.truncated`.
    public func read(offset: Int, into buffer: UnsafeMutableRawBufferPointer, what: String) throws {
        guard let base = buffer.baseAddress else { return }
        var done = 0
        while done < buffer.count {
            let count = pread(fd, base + done, buffer.count - done, off_t(offset + done))
            if count < 0 {
                if errno == EINTR { continue }
                throw BootError.fileUnreadable(path: path, errno: errno)
            }
            if count == 0 {
                throw BootError.truncated(what: what, needed: offset + buffer.count, actual: offset + done)
            }
            done += count
        }
    }
}
