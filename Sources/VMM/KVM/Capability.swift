import CKVM

/// A KVM capability, as queried with KVM_CHECK_EXTENSION (`KVM_CAP_*` in kvm.h).
public struct Capability: Sendable, Hashable, CustomStringConvertible {
    /// The `KVM_CAP_*` number.
    public let number: Int32
    /// The kvm.h name, for error messages.
    public let name: String

    public var description: String { name }

    public static let irqChip = Capability(number: CKVM_CAP_IRQCHIP, name: "KVM_CAP_IRQCHIP")
    public static let halt = Capability(number: CKVM_CAP_HLT, name: "KVM_CAP_HLT")
    public static let userMemory = Capability(number: CKVM_CAP_USER_MEMORY, name: "KVM_CAP_USER_MEMORY")
    public static let setTSSAddress = Capability(number: CKVM_CAP_SET_TSS_ADDR, name: "KVM_CAP_SET_TSS_ADDR")
    public static let extendedCPUID = Capability(number: CKVM_CAP_EXT_CPUID, name: "KVM_CAP_EXT_CPUID")
    public static let recommendedVCPUs = Capability(number: CKVM_CAP_NR_VCPUS, name: "KVM_CAP_NR_VCPUS")
    public static let maximumVCPUs = Capability(number: CKVM_CAP_MAX_VCPUS, name: "KVM_CAP_MAX_VCPUS")
    public static let pit2 = Capability(number: CKVM_CAP_PIT2, name: "KVM_CAP_PIT2")
    public static let setIdentityMapAddress = Capability(number: CKVM_CAP_SET_IDENTITY_MAP_ADDR, name: "KVM_CAP_SET_IDENTITY_MAP_ADDR")
    public static let immediateExit = Capability(number: CKVM_CAP_IMMEDIATE_EXIT, name: "KVM_CAP_IMMEDIATE_EXIT")
    public static let guestDebug = Capability(number: CKVM_CAP_SET_GUEST_DEBUG, name: "KVM_CAP_SET_GUEST_DEBUG")
    public static let readOnlyMemory = Capability(number: CKVM_CAP_READONLY_MEM, name: "KVM_CAP_READONLY_MEM")
    public static let memorySlots = Capability(number: CKVM_CAP_NR_MEMSLOTS, name: "KVM_CAP_NR_MEMSLOTS")

    /// What swvmm cannot boot Linux without.
    public static let required: [Capability] = [
        .irqChip, .userMemory, .setTSSAddress, .extendedCPUID, .pit2, .immediateExit,
    ]
}
