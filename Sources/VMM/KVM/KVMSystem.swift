import CKVM
import Glibc

/// `/dev/kvm`: the root of KVM's fd tree. Creates virtual machines and answers
/// questions about what the host's KVM supports.
public final class KVMSystem: @unchecked Sendable {
    /// The stable KVM API version (kvm.h `KVM_API_VERSION`); anything else is refused.
    public static let expectedAPIVersion: Int32 = CKVM_API_VERSION
    /// Where KVM lives.
    public static let defaultPath = "/dev/kvm"

    let fd: FileDescriptor

    /// Opens KVM and checks the API version.
    public init(path: String = KVMSystem.defaultPath) throws {
        let raw = open(path, O_RDWR | O_CLOEXEC)
        guard raw >= 0 else { throw KVMError.deviceUnavailable(path: path, errno: errno) }
        fd = FileDescriptor(owning: raw)
        let version = try fd.ioctl(CKVM_GET_API_VERSION, value: 0, "KVM_GET_API_VERSION")
        guard version == KVMSystem.expectedAPIVersion else { throw KVMError.unsupportedAPIVersion(version) }
    }

    /// KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific value (often 1).
    public func check(_ capability: Capability) -> Int32 {
        max(0, ckvm_ioctl_value(fd.raw, CKVM_CHECK_EXTENSION, UInt(capability.number)))
    }

    /// Throws `KVMError.missingCapability` naming the first capability in `capabilities` that is absent.
    public func require(_ capabilities: [Capability]) throws {
        for capability in capabilities where check(capability) == 0 {
            throw KVMError.missingCapability(name: capability.name)
        }
    }

    /// The most vCPUs one VM may have (KVM_CAP_MAX_VCPUS, falling back to KVM_CAP_NR_VCPUS, then 4 as kvm.h documents).
    public var maximumVCPUs: Int {
        let maximum = check(.maximumVCPUs)
        if maximum > 0 { return Int(maximum) }
        let recommended = check(.recommendedVCPUs)
        return recommended > 0 ? Int(recommended) : 4
    }

    /// Size of each vCPU's shared `kvm_run` mapping.
    public func vcpuRunAreaSize() throws -> Int {
        Int(try fd.ioctl(CKVM_GET_VCPU_MMAP_SIZE, value: 0, "KVM_GET_VCPU_MMAP_SIZE"))
    }

    /// KVM_GET_SUPPORTED_CPUID: the CPUID leaves this host's KVM can offer a guest.
    public func supportedCPUID() throws -> [kvm_cpuid_entry2] {
        var capacity = 128
        while true {
            let table = CPUIDTable(capacity: capacity)
            do {
                try fd.ioctl(CKVM_GET_SUPPORTED_CPUID, table.pointer, "KVM_GET_SUPPORTED_CPUID")
                return table.entries
            } catch KVMError.ioctlFailed(_, let errno) where errno == E2BIG && capacity < 4096 {
                capacity *= 2
            }
        }
    }

    /// Creates a virtual machine (KVM_CREATE_VM, default machine type).
    public func createVirtualMachine() throws -> VirtualMachine {
        let raw = try fd.ioctl(CKVM_CREATE_VM, value: 0, "KVM_CREATE_VM")
        return try VirtualMachine(fd: FileDescriptor(owning: raw), system: self)
    }
}

/// A `struct kvm_cpuid2` with room for `capacity` entries (kvm.h: a header
/// followed by a flexible array), as KVM_GET_SUPPORTED_CPUID and KVM_SET_CPUID2 want it.
final class CPUIDTable {
    let pointer: UnsafeMutableRawPointer
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        let size = MemoryLayout<kvm_cpuid2>.size + capacity * MemoryLayout<kvm_cpuid_entry2>.stride
        pointer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        pointer.assumingMemoryBound(to: kvm_cpuid2.self).pointee.nent = UInt32(capacity)
    }

    convenience init(entries: [kvm_cpuid_entry2]) {
        self.init(capacity: entries.count)
        let base = pointer + MemoryLayout<kvm_cpuid2>.size
        for (index, entry) in entries.enumerated() {
            base.storeBytes(of: entry, toByteOffset: index * MemoryLayout<kvm_cpuid_entry2>.stride, as: kvm_cpuid_entry2.self)
        }
    }

    deinit { pointer.deallocate() }

    var entries: [kvm_cpuid_entry2] {
        let count = min(Int(pointer.assumingMemoryBound(to: kvm_cpuid2.self).pointee.nent), capacity)
        let base = pointer + MemoryLayout<kvm_cpuid2>.size
        return (0..<count).map {
            base.load(fromByteOffset: $0 * MemoryLayout<kvm_cpuid_entry2>.stride, as: kvm_cpuid_entry2.self)
        }
    }
}
