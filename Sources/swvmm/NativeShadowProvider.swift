import KVMShadow
import Shadow
import VMM

/// Why the VM cannot serve `swvmm shadow --vm` yet.
enum NativeShadowError: Error, CustomStringConvertible {
    case notAvailable

    var description: String {
        switch self {
        case .notAvailable: return "native shadow executor not available yet (use swvmm shadow --gdb with a QEMU guest)"
        }
    }
}

/// The executor provider of `swvmm run --shadow`'s control server: called
/// on the server's thread for each `swvmm shadow --vm` client; it may build
/// S on `shadowVCPU` the first time and hand the same executor out again
/// later. A thrown error's text is what the client prints.
func nativeShadowExecutorProvider(machine: Machine, shadowVCPU: ShadowVCPU) -> ShadowControlServer.ExecutorProvider {
    { throw NativeShadowError.notAvailable }
}
