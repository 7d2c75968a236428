import ArgumentParser
import Glibc
import Guest

/// A directory made with mkdtemp(3) (mode 0700) under $TMPDIR or /tmp, for
/// what a bench keeps only while it runs.
struct PrivateTemporaryDirectory {
    let path: String

    init(prefix: String) throws {
        let base = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/tmp"
        var template = Array((base + "/" + prefix + "-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }) else {
            throw ValidationError("cannot make a directory under \(base): \(errnoText(errno))")
        }
        path = String(cString: made)
    }

    /// Removes the directory and the files in it (it holds no subdirectories).
    func remove() {
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { unlink(path + "/" + name) }
            }
            closedir(directory)
        }
        rmdir(path)
    }
}
