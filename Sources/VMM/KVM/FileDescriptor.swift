import CKVM
import Glibc

/// An owned file descriptor: closed exactly once, when the owner goes away.
///
/// KVM's object model is a tree of fds (system -> VM -> vCPU); each Swift
/// type in this folder owns one of these, so no fd outlives its object.
public final class FileDescriptor: @unchecked Sendable {
    /// The raw descriptor; valid for the lifetime of this object.
    public let raw: Int32

    /// Takes ownership of `raw`.
    public init(owning raw: Int32) {
        self.raw = raw
    }

    deinit {
        close(raw)
    }

    /// ioctl with a pointer argument; throws `KVMError.ioctlFailed` naming `operation`.
    @discardableResult
    func ioctl(_ request: UInt, _ argument: UnsafeMutableRawPointer?, _ operation: String) throws -> Int32 {
        let result = ckvm_ioctl_ptr(raw, request, argument)
        guard result >= 0 else { throw KVMError.ioctlFailed(operation: operation, errno: errno) }
        return result
    }

    /// ioctl with an integer argument.
    @discardableResult
    func ioctl(_ request: UInt, value: UInt, _ operation: String) throws -> Int32 {
        let result = ckvm_ioctl_value(raw, request, value)
        guard result >= 0 else { throw KVMError.ioctlFailed(operation: operation, errno: errno) }
        return result
    }

    /// ioctl on a typed struct passed by reference.
    @discardableResult
    func ioctl<T>(_ request: UInt, _ value: inout T, _ operation: String) throws -> Int32 {
        try withUnsafeMutablePointer(to: &value) { try ioctl(request, UnsafeMutableRawPointer($0), operation) }
    }
}
