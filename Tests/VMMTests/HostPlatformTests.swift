@testable import VMM
import XCTest

/// What swvmm reads about the host it runs on.
final class HostPlatformTests: XCTestCase {
    func testAVendorSignatureReadsAsTheTwelveBytesOfEBXECXEDX() {
        // "TCGT" "CGTC" "GTCG", each register little-endian (QEMU's TCG).
        XCTAssertEqual(HostPlatform.signatureText(ebx: 0x5447_4354, ecx: 0x4354_4743, edx: 0x4743_5447), "TCGTCGTCGTCG")
        // KVM's signature ends in NULs, which are not part of the text.
        let (ebx, ecx, edx) = CPUIDNormalizer.kvmSignature
        XCTAssertEqual(HostPlatform.signatureText(ebx: ebx, ecx: ecx, edx: edx), "KVMKVMKVM")
    }

    func testTheVirtualizationFlagComesFromTheFlagsLines() {
        XCTAssertEqual(HostPlatform.hardwareVirtualizationFlag(cpuinfo: "processor: 0\nflags\t\t: fpu vme svm cx16\n"), "svm")
        XCTAssertEqual(HostPlatform.hardwareVirtualizationFlag(cpuinfo: "flags : fpu vmx\n"), "vmx")
        XCTAssertNil(HostPlatform.hardwareVirtualizationFlag(cpuinfo: "model name: svm vmx\nflags : fpu\n"))
    }

    /// This machine's own CPUID, cross-checked with /proc/cpuinfo's flags.
    func testTheSignatureIsThereExactlyWhenTheHypervisorFlagIs() {
        let flags = HostPlatform.readProcFile("/proc/cpuinfo").split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
        let hypervisor = flags.split(whereSeparator: { $0 == " " || $0 == "\t" }).contains("hypervisor")
        XCTAssertEqual(HostPlatform.hypervisorSignature != nil, hypervisor, "flags: \(flags)")
    }
}
