import Guest
import Glibc

/// A failure talking to KVM: what swvmm was doing, and the errno the kernel gave.
public enum KVMError: Error, Equatable, CustomStringConvertible {
    /// `/dev/kvm` could not be opened.
    case deviceUnavailable(path: String, errno: Int32)
    /// KVM_GET_API_VERSION returned something other than 12.
    case unsupportedAPIVersion(Int32)
    /// A capability swvmm relies on is missing (KVM_CHECK_EXTENSION returned 0).
    case missingCapability(name: String)
    /// An ioctl failed; `operation` names it in KVM's terms (e.g. "KVM_SET_SREGS").
    case ioctlFailed(operation: String, errno: Int32)
    /// mmap of the vCPU's shared `kvm_run` area failed.
    case runAreaMapFailed(errno: Int32)
    /// A request the caller made is outside what this VM allows.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .deviceUnavailable(path, errno):
            var text = "cannot open \(path): \(errnoText(errno))"
            if errno == ENOENT { text += " (is the kvm module loaded? is this a virtual machine without nested virtualization?)" }
            if errno == EACCES { text += " (add yourself to the 'kvm' group or run as root)" }
            return text
        case let .unsupportedAPIVersion(version):
            return "KVM API version \(version) is not the stable version \(KVMSystem.expectedAPIVersion)"
        case let .missingCapability(name):
            return "this host's KVM lacks \(name), which swvmm needs"
        case let .ioctlFailed(operation, errno):
            return "\(operation) failed: \(errnoText(errno))"
        case let .runAreaMapFailed(errno):
            return "cannot map the vCPU run area: \(errnoText(errno))"
        case let .invalidArgument(text):
            return text
        }
    }
}
