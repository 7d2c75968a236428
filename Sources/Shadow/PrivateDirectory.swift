import Glibc
import Guest

/// Makes `directory` (its parent must exist) if missing, mode 0700, and
/// checks it is a real directory of this user closed to others, as every
/// directory swvmm keeps state or sockets in must be (some live in a shared
/// /tmp). Returns nil when it is usable, else why not.
func preparePrivateDirectory(_ directory: String) -> String? {
    if mkdir(directory, 0o700) != 0 && errno != EEXIST {
        return "cannot create \(directory): \(errnoText(errno))"
    }
    var info = stat()
    guard lstat(directory, &info) == 0 else { return "\(directory): \(errnoText(errno))" }
    guard info.st_mode & S_IFMT == S_IFDIR, info.st_uid == getuid(), info.st_mode & 0o077 == 0 else {
        return "\(directory) is not a directory of this user closed to others"
    }
    return nil
}
