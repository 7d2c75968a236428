import CKVM
import Glibc
import Guest

/// What kind of KVM this host offers, decided from CPU flags, not from timing
/// (DESIGN.md §5): hardware-assisted KVM shows `vmx` (Intel VT-x) or `svm`
/// (AMD-V) in /proc/cpuinfo. Without either, /dev/kvm may still exist (nested
/// setups such as the PVM backend of shared/PLATFORM.md), runs guest user code
/// natively, but emulates supervisor code and cannot boot a stock kernel to
/// user space.
public enum HostPlatform {
    /// True when the host CPU advertises VT-x or AMD-V (read once per process).
    public static let hasHardwareVirtualization: Bool = hardwareVirtualizationFlag(cpuinfo: readCPUInfo()) != nil

    /// The signature of the hypervisor this host runs under (CPUID leaf
    /// 0x40000000: EBX, ECX, EDX as text), or nil on bare metal (CPUID.1:ECX
    /// bit 31, "hypervisor present", clear).
    public static let hypervisorSignature: String? = {
        var registers: [UInt32] = [0, 0, 0, 0]
        ckvm_host_cpuid(1, 0, &registers)
        guard registers[2] & hypervisorPresentBit != 0 else { return nil }
        ckvm_host_cpuid(hypervisorLeaf, 0, &registers)
        return signatureText(ebx: registers[1], ecx: registers[2], edx: registers[3])
    }()

    /// CPUID.1:ECX bit 31: set by every hypervisor (Intel SDM Vol. 2A, CPUID; reserved for it).
    static let hypervisorPresentBit: UInt32 = 1 << 31
    /// The hypervisor vendor leaf (the range 0x40000000-0x4FFFFFFF is the hypervisor's).
    static let hypervisorLeaf: UInt32 = 0x4000_0000

    /// Twelve bytes of a CPUID vendor signature, little-endian in EBX, ECX, EDX.
    static func signatureText(ebx: UInt32, ecx: UInt32, edx: UInt32) -> String {
        let bytes = [ebx, ecx, edx].flatMap { word in (0 ..< 4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) } }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// The first of `vmx`/`svm` among the `flags` lines of `cpuinfo`, if any.
    public static func hardwareVirtualizationFlag(cpuinfo: String) -> String? {
        for line in cpuinfo.split(separator: "\n") where line.hasPrefix("flags") {
            let flags = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" })
            if flags.contains("vmx") { return "vmx" }
            if flags.contains("svm") { return "svm" }
        }
        return nil
    }

    /// The plain-words explanation swvmm prints when a stock kernel stops at
    /// an instruction this host's KVM cannot emulate.
    public static let emulationLimitExplanation = """
    This host's KVM has no hardware virtualization (no vmx/svm flag in /proc/cpuinfo). \
    It runs guest user code natively but emulates guest kernel code instruction by \
    instruction, and its emulator lacks some instructions a stock Linux kernel needs \
    (see shared/PLATFORM.md). The boot got as far as the serial output above. On a \
    host with Intel VT-x or AMD-V the same command boots to the guest's /init.
    """

    static func readCPUInfo() -> String {
        readProcFile("/proc/cpuinfo")
    }

    /// Reads a (small) procfs file whole; "" if it cannot be read.
    public static func readProcFile(_ path: String) -> String {
        HostFile.text(path, limit: 16 << 20) ?? ""
    }

    /// This process's peak resident set (VmHWM in /proc/self/status), in bytes.
    ///
    /// Not wait4's ru_maxrss: a posix_spawn'ed child is charged there with its
    /// parent's memory from before exec, which would inflate every figure.
    public static func peakResidentBytes() -> UInt64 {
        for line in readProcFile("/proc/self/status").split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let digits = line.dropFirst("VmHWM:".count).filter(\.isNumber)
            return (UInt64(digits) ?? 0) * 1024 // the value is in kB
        }
        return 0
    }
}
