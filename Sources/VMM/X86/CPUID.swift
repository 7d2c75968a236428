/// One CPUID leaf as `kvm_cpuid_entry2` carries it, in plain Swift.
public struct CPUIDEntry: Sendable, Equatable {
    /// KVM_CPUID_FLAG_SIGNIFCANT_INDEX: the leaf has sub-leaves selected by ECX (linux/kvm.h).
    public static let significantIndex: UInt32 = 1

    public var function: UInt32
    public var index: UInt32
    public var flags: UInt32
    public var eax: UInt32
    public var ebx: UInt32
    public var ecx: UInt32
    public var edx: UInt32

    public init(function: UInt32, index: UInt32 = 0, flags: UInt32 = 0,
                eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0) {
        self.function = function
        self.index = index
        self.flags = flags
        self.eax = eax
        self.ebx = ebx
        self.ecx = ecx
        self.edx = edx
    }
}

/// Turns KVM_GET_SUPPORTED_CPUID's table into the one a given vCPU should see.
///
/// Bit positions: Intel SDM Vol. 2A, CPUID instruction, Tables 3-8 ("Information
/// Returned by CPUID") and 3-10/3-11 (feature flags).
public enum CPUIDNormalizer {
    static let leafFeatures: UInt32 = 0x1
    static let leafCacheParameters: UInt32 = 0x4
    static let leafTopology: UInt32 = 0xB
    static let leafTopologyV2: UInt32 = 0x1F
    /// Hypervisor CPUID range base (Linux: arch/x86/include/uapi/asm/kvm_para.h KVM_CPUID_SIGNATURE).
    /// Leaf 7, structured extended features: sub-leaf 0 EDX bit 20 is CET-IBT,
    /// sub-leaf 1 EAX bit 17 is FRED (SDM Vol. 2A, CPUID leaf 07H). Both are
    /// hidden from the guest: with either, a 64-bit `syscall` does not enter
    /// the kernel at MSR_LSTAR by a plain jump (IBT demands an ENDBR64 there;
    /// FRED does not use LSTAR at all), and swvmm's syscall-entry trap needs that jump.
    static let leafExtendedFeatures: UInt32 = 0x7
    static let indirectBranchTracking: UInt32 = 1 << 20
    static let flexibleReturnAndEventDelivery: UInt32 = 1 << 17
    static let leafHypervisor: UInt32 = 0x4000_0000
    static let leafKVMFeatures: UInt32 = 0x4000_0001

    /// CPUID.1:ECX bit 13, CMPXCHG16B.
    public static let cx16: UInt32 = 1 << 13
    /// CPUID.1:ECX bit 31: running under a hypervisor (reserved for this use by Intel and AMD).
    public static let hypervisorPresent: UInt32 = 1 << 31
    /// CPUID.1:EDX bit 28, HTT: EBX[23:16] is valid.
    static let htt: UInt32 = 1 << 28
    /// Topology level types in CPUID.B/1F:ECX[15:8].
    static let levelSMT: UInt32 = 1
    static let levelCore: UInt32 = 2

    /// "KVMKVMKVM\0\0\0" as EBX, ECX, EDX.
    ///
    /// swvmm presents KVM's own signature rather than one of its own: the
    /// paravirtual interfaces behind it (kvm-clock, async page faults, PV EOI,
    /// steal time) are implemented by the host kernel's KVM, whatever VMM
    /// drives it, and Linux only uses them when it sees this exact signature.
    /// Without kvm-clock the guest calibrates its TSC against the PIT, which is
    /// slow and imprecise, badly so under an emulating backend.
    public static let kvmSignature: (UInt32, UInt32, UInt32) = (0x4B4D_564B, 0x564B_4D56, 0x0000_004D)

    /// The table for vCPU `vcpuIndex` of `cpuCount` (one core per package
    /// thread, all in one package): APIC ids in leaves 1, 0xB and 0x1F, core
    /// counts in leaves 1 and 4, the hypervisor bit and signature, IBT and
    /// FRED hidden (see `leafExtendedFeatures`), and CX16
    /// cleared when `clearCX16` (an emulating KVM backend cannot run
    /// `lock cmpxchg16b`, shared/PLATFORM.md).
    public static func normalize(_ supported: [CPUIDEntry], vcpuIndex: Int, cpuCount: Int,
                                 clearCX16: Bool) -> [CPUIDEntry] {
        let apicID = UInt32(truncatingIfNeeded: vcpuIndex) & 0xFF
        let count = UInt32(clamping: max(1, min(cpuCount, 255)))
        var result: [CPUIDEntry] = []
        var emittedTopology: Set<UInt32> = []
        let hasKVMFeatures = supported.contains { $0.function == leafKVMFeatures }
        for var entry in supported {
            switch entry.function {
            case leafFeatures:
                // EBX[31:24] initial APIC id, EBX[23:16] addressable logical processors.
                entry.ebx = (entry.ebx & 0x0000_FFFF) | apicID << 24 | count << 16
                entry.ecx |= hypervisorPresent
                if clearCX16 { entry.ecx &= ~cx16 }
                if count > 1 { entry.edx |= htt }
            case leafCacheParameters:
                // EAX[31:26]: addressable core ids in the package, minus one.
                entry.eax = (entry.eax & 0x03FF_FFFF) | (min(count, 64) - 1) << 26
            case leafTopology, leafTopologyV2:
                if emittedTopology.insert(entry.function).inserted {
                    result += topologyLeaves(entry.function, apicID: apicID, cpuCount: count)
                }
                continue
            case leafExtendedFeatures where entry.index == 0:
                entry.edx &= ~indirectBranchTracking
            case leafExtendedFeatures where entry.index == 1:
                entry.eax &= ~flexibleReturnAndEventDelivery
            case leafHypervisor:
                entry.eax = hasKVMFeatures ? leafKVMFeatures : leafHypervisor
                (entry.ebx, entry.ecx, entry.edx) = kvmSignature
            default:
                break
            }
            result.append(entry)
        }
        if !supported.contains(where: { $0.function == leafHypervisor }) {
            let (ebx, ecx, edx) = kvmSignature
            result.append(CPUIDEntry(function: leafHypervisor, eax: hasKVMFeatures ? leafKVMFeatures : leafHypervisor,
                                     ebx: ebx, ecx: ecx, edx: edx))
        }
        return result
    }

    /// Sub-leaves 0 (SMT: one thread per core), 1 (cores: `cpuCount`) and 2
    /// (invalid, ends the enumeration) of leaf 0xB or 0x1F (SDM Vol. 2A,
    /// CPUID leaf 0BH). EAX[4:0] is the APIC-id shift to the next level.
    static func topologyLeaves(_ function: UInt32, apicID: UInt32, cpuCount: UInt32) -> [CPUIDEntry] {
        let coreShift = UInt32(cpuCount <= 1 ? 0 : 32 - (cpuCount - 1).leadingZeroBitCount)
        return [
            CPUIDEntry(function: function, index: 0, flags: CPUIDEntry.significantIndex,
                       eax: 0, ebx: 1, ecx: levelSMT << 8 | 0, edx: apicID),
            CPUIDEntry(function: function, index: 1, flags: CPUIDEntry.significantIndex,
                       eax: coreShift, ebx: cpuCount, ecx: levelCore << 8 | 1, edx: apicID),
            CPUIDEntry(function: function, index: 2, flags: CPUIDEntry.significantIndex,
                       eax: 0, ebx: 0, ecx: 2, edx: apicID),
        ]
    }
}
