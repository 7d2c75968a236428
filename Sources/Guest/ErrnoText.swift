import Glibc

/// `strerror` text with the number, e.g. "Invalid argument (errno 22)": the
/// one way swvmm words a failed system call's errno.
public func errnoText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return "\(String(cString: text)) (errno \(code))"
}
