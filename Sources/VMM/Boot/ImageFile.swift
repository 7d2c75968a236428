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

    /// Opens `path` read-only.
    public init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BootError.fileUnreadable(path: path, errno: errno) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let code = errno
            close(fd)
            throw BootError.fileUnreadable(path: path, errno: code)
        }
        self.path = path
        self.fd = fd
        size = Int(status.st_size)
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
